"""Run the scale benchmark and write ``benchmarks/RESULTS.md`` (``make bench``).

    python -m benchmarks.run                        # 3,000 SYNTHETIC symbols x 25 years, scaling, prototypes
    python -m benchmarks.run --symbols 300 --years 5 --no-scaling --no-baseline   # a quick run

Every workload runs in a process of its own (``benchmarks.workloads``), watched for its resident
memory (``--rss-limit-gib``: a workload above it is stopped and reported, so that a benchmark never
pushes the machine into swapping or the OOM killer). The generated universe is cached in the work
directory (``--workdir``, default: the system's temporary directory) and reused by later runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from benchmarks import SYNTHETIC

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SAMPLE_AS_OF = "2026-08-21"  # the last day of the embedded sample


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--symbols", type=int, default=3000, help="SYNTHETIC symbols (default 3000)")
    p.add_argument("--years", type=float, default=25.0, help="years of daily history (default 25)")
    p.add_argument("--seed", type=int, default=20261124, help="generator seed")
    p.add_argument("--workdir", type=Path, default=None,
                   help="where the universe, homes and logs go (default: <tmp>/capspread-bench)")
    p.add_argument("--output", type=Path, default=RESULTS, help="the Markdown report (default benchmarks/RESULTS.md)")
    p.add_argument("--json", type=Path, default=None, help="also write every measurement as JSON here")
    p.add_argument("--baseline-symbols", type=_ints, default=[100, 200],
                   help="the two subset sizes (symbols, all years) the baseline is measured on")
    p.add_argument("--insert-rows", type=_ints, default=[1000, 2000],
                   help="the two row counts the row-wise executemany is measured on")
    p.add_argument("--scaling", type=_ints, default=[300, 3000, 10000],
                   help="universe sizes (symbols) of the scaling series")
    p.add_argument("--scaling-years", type=float, default=1.0, help="years of history in the scaling series (default 1)")
    p.add_argument("--no-scaling", action="store_true", help="skip the scaling series")
    p.add_argument("--no-baseline", action="store_true", help="skip the naive baseline")
    p.add_argument("--no-sample", action="store_true", help="skip the real sample run")
    p.add_argument("--prototypes", action="store_true",
                   help="also measure the proposed changes not applied (benchmarks/prototypes.py)")
    p.add_argument("--no-prototypes", action="store_true", help=argparse.SUPPRESS)  # the default now
    p.add_argument("--no-year-layout", action="store_true",
                   help="skip the nightly with the opt-in Parquet layout CAPSPREAD_PARQUET_LAYOUT=year")
    p.add_argument("--fallback-years", type=_floats, default=[15.0, 10.0, 5.0],
                   help="when the main backfill is stopped for memory, run the main universe again with these years "
                   "of history, in order (default 15,10,5); the attempt is reported")
    p.add_argument("--rss-limit-gib", type=float, default=16.0,
                   help="stop a workload above this resident memory (default 16: the machine's other users keep room)")
    p.add_argument("--timeout", type=float, default=3600.0, help="stop a workload after this many seconds")
    p.add_argument("--keep-homes", action="store_true", help="keep the benchmark homes (the universe is always kept)")
    p.add_argument("--render", type=Path, default=None, metavar="JSON",
                   help="only write the report again from a run's saved measurements (--json, or last_results.json "
                   "in the work directory); nothing is measured")
    p.add_argument("--smoke", action="store_true",
                   help="run every workload in this process with Prefect's tasks as plain functions (tests only: "
                   "no Prefect server, peak RSS is the whole process's)")
    return p.parse_args(argv)


def _rss_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def stop_group(proc: subprocess.Popen) -> None:
    """End a workload's process group (the workload and what it started), by its id."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def code_state() -> dict:
    """The pipeline code a workload runs: the commit checked out and the tracked files edited but not
    committed (outside benchmarks/, tests/ and documentation, which the pipeline does not run)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30,
                              check=True).stdout

    try:
        commit = git("rev-parse", "--short=12", "HEAD").strip()
        dirty = sorted({line[3:].split(" -> ")[-1] for line in git("status", "--porcelain", "--untracked-files=no")
                        .splitlines() if len(line) > 3})
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": commit, "dirty": [f for f in dirty if not f.startswith(("benchmarks/", "tests/", "docs/"))
                                        and not f.endswith(".md")]}


def _trace(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def trace_stages(path: Path) -> list[dict]:
    """The stages a stopped workload had finished (calls of one stage added up, as the Recorder does)."""
    from benchmarks.measure import Recorder, Stage

    rec = Recorder()
    for r in _trace(path):
        if "stage" in r:
            rec._add(Stage(**r["stage"]))
    return rec.as_dicts()


def last_trace(path: Path) -> str:
    """Where a stopped workload was: its open stages and resident memory at the last heartbeat."""
    beats = [r for r in _trace(path) if "open" in r]
    if not beats:
        return "no trace"
    top = max(beats, key=lambda r: r["rss"])
    last = beats[-1]
    return (f"last seen in {' > '.join(last['open']) or '(no stage)'} at {last['rss'] / 2**30:.1f} GiB; "
            f"largest sample {top['rss'] / 2**30:.1f} GiB in {' > '.join(top['open']) or '(no stage)'}")


class Runner:
    def __init__(self, work: Path, rss_limit: float, timeout: float, log=print, inline: bool = False) -> None:
        self.work, self.rss_limit, self.timeout, self.log, self.inline = work, rss_limit, timeout, log, inline
        self.work.mkdir(parents=True, exist_ok=True)

    def child(self, workload: str, label: str, spec: dict) -> dict:
        """Run one workload in its own process; its JSON result, or an ``error`` entry."""
        if self.inline:
            return self._inline(workload, label, spec)
        spec_path = self.work / f"{label}.spec.json"
        out_path = self.work / f"{label}.out.json"
        log_path = self.work / f"{label}.log"
        trace_path = self.work / f"{label}.trace.jsonl"
        for p in (out_path, trace_path):
            p.unlink(missing_ok=True)
        spec = {**spec, "trace": str(trace_path)}
        spec_path.write_text(json.dumps(spec, indent=1, default=str))
        self.log(f"[bench] {label}: running ({workload}) ...", flush=True)
        code = {"start": code_state()}
        t0 = time.perf_counter()
        load_before = os.getloadavg()
        with log_path.open("w") as log:
            proc = subprocess.Popen([sys.executable, "-m", "benchmarks.workloads", workload, str(spec_path), str(out_path)],
                                    cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=self.env(),
                                    start_new_session=True)  # its own process group: Prefect's server goes with it
            killed, top = None, 0
            while proc.poll() is None:
                rss = _rss_of(proc.pid)
                top = max(top, rss)
                if rss > self.rss_limit * 2**30:
                    killed = f"stopped: resident memory {rss / 2**30:.1f} GiB above the limit of {self.rss_limit:g} GiB"
                elif time.perf_counter() - t0 > self.timeout:
                    killed = f"stopped: still running after {self.timeout:.0f} s"
                if killed:
                    stop_group(proc)
                    break
                time.sleep(0.25)
            if not killed:
                stop_group(proc)  # whatever the workload left running (Prefect's temporary server)
        wall = time.perf_counter() - t0
        code["end"] = code_state()
        if killed or proc.returncode != 0 or not out_path.exists():
            tail = log_path.read_text(errors="replace").splitlines()[-15:]
            why = killed or f"exit code {proc.returncode}"
            where = last_trace(trace_path)
            self.log(f"[bench] {label}: FAILED ({why}) after {wall:.0f} s; {where}\n  " + "\n  ".join(tail), flush=True)
            return {"error": f"{why}; {where}", "log_tail": tail, "wall": wall, "peak_rss": top, "label": label,
                    "stages": trace_stages(trace_path), "code": code}
        result = json.loads(out_path.read_text())
        result.update(label=label, wall=wall, code=code, load_before=[round(x, 2) for x in load_before],
                      load_after=[round(x, 2) for x in os.getloadavg()])
        self.log(f"[bench] {label}: {wall:.1f} s wall, peak RSS {result.get('peak_rss', 0) / 2**30:.2f} GiB", flush=True)
        return result


    def env(self) -> dict:
        """The children's environment: as found, except that compiled bytecode is cached (in the
        work directory, never beside the sources) so that imports cost what they cost a user."""
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(self.work / "pycache")
        return env

    def _inline(self, workload: str, label: str, spec: dict) -> dict:
        """Smoke mode: the workload in this process, the pipeline's Prefect tasks as plain functions."""
        from benchmarks.workloads import execute

        t0 = time.perf_counter()
        load_before = os.getloadavg()
        code = {"start": code_state()}
        result = json.loads(json.dumps(execute(workload, {**spec, "prefect": False}), default=str))
        code["end"] = code_state()
        result.update(label=label, code=code, wall=time.perf_counter() - t0, load_before=[round(x, 2) for x in load_before],
                      load_after=[round(x, 2) for x in os.getloadavg()], inline=True)
        self.log(f"[bench] {label}: {result['wall']:.1f} s (in process)", flush=True)
        return result


def bench_home(work: Path, name: str, universe, data: Path) -> dict:
    """A fresh benchmark home with the SYNTHETIC configuration."""
    from benchmarks.synthetic import config_text

    home = work / f"{SYNTHETIC}_home_{name}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    config = home / f"{SYNTHETIC}_capspread.toml"
    config.write_text(config_text(universe))
    return {"home": str(home), "data": str(data), "config": str(config), "profile": "synthetic",
            "prefect_home": str(work / "prefect_home")}


def copy_home(src: Path, dst: Path) -> None:
    """A copy of a backfilled home for a variant nightly that republishes it first: the warehouse
    copied, the landing files and the published snapshot and manifest hard-linked (a run writes a
    new snapshot and renames it), the published Parquet generations left out (the republish writes
    them anew; a later publish may append in place to a file of a generation it removes, so they
    must not be shared), the rest copied."""
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    for entry in src.iterdir():
        target = dst / entry.name
        if entry.is_dir():
            linked = entry.name in ("landing", "published")
            ignore = shutil.ignore_patterns(".parquet", "parquet") if entry.name == "published" else None
            shutil.copytree(entry, target, symlinks=True, copy_function=os.link if linked else shutil.copy2,
                            ignore=ignore)
        elif entry.is_symlink():
            os.symlink(os.readlink(entry), target)
        else:
            shutil.copy2(entry, target)


def previous_session(day: str) -> str:
    """The trading session before ``day`` (ISO dates), by the exchange calendar."""
    from transforms.calendar import sessions

    d = date.fromisoformat(day)
    return sessions(d - timedelta(days=10), d - timedelta(days=1))["trade_date"][-1].isoformat()


def run_universe(runner: Runner, work: Path, symbols: int, years: float, seed: int, tag: str,
                 floor: bool = True, year_layout: bool = False, outputs: bool = False) -> dict:
    """Generate (or reuse) a universe, then floor, backfill and nightly on it (with ``outputs``, also
    what writing the backfill's outputs costs by itself: ``benchmarks.floor.outputs``). With ``year_layout``,
    also the nightly on a copy of the backfilled home republished in the opt-in Parquet layout
    ``CAPSPREAD_PARQUET_LAYOUT=year``."""
    from benchmarks.synthetic import Universe

    u = Universe(symbols=symbols, years=years, seed=seed)
    data = work / u.key
    out: dict = {"symbols": symbols, "years": years, "data": str(data)}
    out["generate"] = runner.child("generate", f"{tag}-generate", {"symbols": symbols, "years": years, "seed": seed,
                                                                 "data": str(data)})
    if "error" in out["generate"]:
        return out
    manifest = out["generate"]["manifest"]
    if floor:
        out["floor"] = runner.child("floor", f"{tag}-floor", {"data": str(data), "work": str(work)})
    spec = bench_home(work, tag, u, data)
    # the backfill stops one session short of the history's end; that session is the first nightly,
    # which pays what a backfill leaves to the run after it (a full publish keeps no spare snapshot),
    # and the nightly day is the second: what every later night costs
    out["backfill"] = runner.child("pipeline", f"{tag}-backfill", {**spec, "as_of": previous_session(manifest["end"])})
    if outputs and "error" not in out["backfill"]:
        out["outputs"] = runner.child("outputs", f"{tag}-outputs", {
            "warehouse": str(Path(spec["home"]) / "warehouse.duckdb"), "work": str(work)})
    variant = None
    if year_layout and "error" not in out["backfill"]:
        variant = {**spec, "home": spec["home"] + "_year_layout"}
        copy_home(Path(spec["home"]), Path(variant["home"]))
        out["republish_year"] = runner.child("republish", f"{tag}-republish-year", {**variant, "layout": "year"})
    if "error" not in out["backfill"]:
        out["nightly_first"] = runner.child("pipeline", f"{tag}-nightly-first", {**spec, "as_of": manifest["end"]})
        out["nightly"] = runner.child("pipeline", f"{tag}-nightly", {**spec, "as_of": manifest["nightly"]})
    if variant is not None and "error" not in out["republish_year"]:
        year = {"environ": {"CAPSPREAD_PARQUET_LAYOUT": "year"}}
        out["nightly_year_first"] = runner.child("pipeline", f"{tag}-nightly-year-first", {
            **variant, **year, "as_of": manifest["end"]})
        out["nightly_year"] = runner.child("pipeline", f"{tag}-nightly-year", {
            **variant, **year, "as_of": manifest["nightly"]})
    if variant is not None:
        shutil.rmtree(variant["home"], ignore_errors=True)
    out["home"] = spec["home"]
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from benchmarks.measure import machine
    from benchmarks.report import render

    if args.render:
        text = render(json.loads(args.render.read_text()))
        args.output.write_text(text)
        print(text.rstrip().splitlines()[-1])
        return 0

    work = (args.workdir or Path(tempfile.gettempdir()) / "capspread-bench").resolve()
    runner = Runner(work, args.rss_limit_gib, args.timeout, inline=args.smoke)
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    results: dict = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                              if k not in ("workdir", "output", "json")}, "smoke": args.smoke,
                     "started": started.isoformat(timespec="seconds"), "machine_start": machine(),
                     "bytecode_cache": "PYTHONDONTWRITEBYTECODE" in os.environ and not args.smoke}
    print(f"[bench] {SYNTHETIC} universe: {args.symbols} symbols x {args.years:g} years (seed {args.seed})", flush=True)
    main_run = run_universe(runner, work, args.symbols, args.years, args.seed, "main", year_layout=not args.no_year_layout,
                                 outputs=True)
    results["attempts"] = []
    for years in [y for y in args.fallback_years if y < args.years]:
        stopped = (main_run.get("backfill") or {}).get("error", "")
        if "resident memory" not in stopped:
            break
        results["attempts"].append(main_run)
        if main_run.get("home"):
            shutil.rmtree(main_run["home"], ignore_errors=True)
        print(f"[bench] the backfill did not fit in {args.rss_limit_gib:g} GiB: {args.symbols} symbols x {years:g} "
              "years instead", flush=True)
        main_run = run_universe(runner, work, args.symbols, years, args.seed, "main", year_layout=not args.no_year_layout,
                                 outputs=True)
    results["main"] = main_run
    data = Path(main_run["data"]) if "error" not in main_run["generate"] else None
    if not args.no_baseline and data is not None:
        results["baseline"] = runner.child("baseline", "baseline", {
            "data": str(data), "work": str(work), "subset_symbols": args.baseline_symbols, "insert_rows": args.insert_rows})
    if args.prototypes and "error" not in main_run.get("nightly", {"error": 1}):
        results["prototypes"] = runner.child("prototype", "prototypes", {
            "home": main_run["home"], "data": str(data), "work": str(work),
            "config": str(Path(main_run["home"]) / f"{SYNTHETIC}_capspread.toml"),
            "prefect_home": str(work / "prefect_home")})
    if not args.no_sample:
        home = work / "sample_home"
        shutil.rmtree(home, ignore_errors=True)
        results["sample"] = runner.child("pipeline", "sample", {"home": str(home), "profile": "sample",
                                                                "as_of": SAMPLE_AS_OF,
                                                                "prefect_home": str(work / "prefect_home")})
        results["sample"]["as_of"] = SAMPLE_AS_OF
    if not args.no_scaling:
        results["scaling"] = []
        for n in args.scaling:
            point = run_universe(runner, work, n, args.scaling_years, args.seed, f"scale{n}", floor=True)
            results["scaling"].append(point)
            if not args.keep_homes and point.get("home"):
                shutil.rmtree(point["home"], ignore_errors=True)
    if not args.keep_homes:
        for home in (main_run.get("home"), None if args.no_sample else work / "sample_home"):
            if home:
                shutil.rmtree(home, ignore_errors=True)
    results["machine_end"] = machine()
    results["bench_seconds"] = time.perf_counter() - t0
    text = render(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str) + "\n")
    (work / "last_results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    print(text.rstrip().splitlines()[-1])
    return 0 if "error" not in main_run.get("backfill", {}) else 1


if __name__ == "__main__":
    sys.exit(main())
