"""Render the benchmark's measurements as ``benchmarks/RESULTS.md``; the last line is the summary."""

from __future__ import annotations

from datetime import datetime

from benchmarks import SYNTHETIC

GIB = 2**30
RUN_TOTAL = "run_pipeline (total)"
EXCLUDED = ("imports (capspread, GX, Prefect)", "Prefect ephemeral server start (excluded from the run)")


def _f(x, digits: int = 1, na: str = "–") -> str:
    if x is None:
        return na
    if isinstance(x, float) and x != x:
        return na
    return f"{x:,.{digits}f}"


def _stage(result: dict | None, name: str) -> dict | None:
    if not result or "error" in result:  # a stopped or failed workload has no figures to quote
        return None
    for s in result.get("stages", []) or []:
        if s["name"] == name:
            return s
    return None


def _seconds(result: dict | None, name: str = RUN_TOTAL) -> float | None:
    s = _stage(result, name)
    return s["seconds"] if s else None


def _cpu(result: dict | None, name: str = RUN_TOTAL) -> float | None:
    s = _stage(result, name)
    return s["cpu_seconds"] if s else None


def floor_seconds(floor: dict | None, phase: str = "backfill", key: str = "seconds") -> float | None:
    if not floor or "error" in floor:
        return None
    stages = [s for s in floor.get("stages", []) if s["name"].startswith(phase + ":")]
    return sum(s[key] for s in stages) if stages else None


def outputs_seconds(outputs: dict | None, key: str = "seconds") -> float | None:
    """Seconds (or CPU seconds) of writing the contract's outputs once (``benchmarks.floor.outputs``)."""
    if not outputs or "error" in outputs:
        return None
    stages = [s for s in outputs.get("stages", []) if s["depth"] == 0]
    return sum(s[key] for s in stages) if stages else None


def _gib(x) -> str:
    return _f(x / GIB, 2) if x else "–"


def stage_table(result: dict | None, title_rows: str = "rows") -> list[str]:
    if not result or "error" in result:
        return [f"*not measured: {(result or {}).get('error', 'skipped')}*", ""]
    lines = ["| stage | wall s | CPU s | " + title_rows + " | rows/s (wall) | peak RSS GiB | calls |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for s in result["stages"]:
        name = ("› " * s.get("depth", 0)) + s["name"]
        rows = s.get("rows")
        rate = rows / s["seconds"] if rows and s["seconds"] > 0 else None
        lines.append(f"| {name} | {_f(s['seconds'], 2)} | {_f(s['cpu_seconds'], 2)} | {_f(rows, 0) if rows else ''} | "
                     f"{_f(rate, 0) if rate else ''} | {_gib(s.get('peak_rss'))} | {s.get('calls', 1)} |")
    if result.get("process_seconds") is not None:
        lines.append(f"| **process** (imports included) | {_f(result.get('process_seconds'), 2)} | "
                     f"{_f(result.get('process_cpu_seconds'), 2)} | | | **{_gib(result.get('peak_rss'))}** | |")
    load = result.get("load_before")
    if load:
        lines.append("")
        lines.append(f"Load average before / after this workload: {load} / {result.get('load_after')}.")
    return lines + [""]


def summary_values(r: dict) -> dict:
    main = r.get("main", {})
    backfill, nightly, floor = main.get("backfill"), main.get("nightly"), main.get("floor")
    first = main.get("nightly_first")
    b_s, n_s, f_s = _seconds(backfill), _seconds(nightly), floor_seconds(floor)
    base = None if "error" in (r.get("baseline") or {}) else (r.get("baseline") or {}).get("total_seconds")
    peaks = [x.get("peak_rss") for x in (backfill, first, nightly) if x and x.get("peak_rss") and "error" not in x]
    return {
        "backfill_s": b_s, "floor_s": f_s,
        "pipeline_over_floor": b_s / f_s if b_s and f_s else None,
        "baseline_over_pipeline": base / b_s if base and b_s else None,
        "nightly_s": n_s, "peak_rss_gib": max(peaks) / GIB if peaks else None,
        "backfill_cpu_s": _cpu(backfill), "floor_cpu_s": floor_seconds(floor, key="cpu_seconds"),
        "nightly_cpu_s": _cpu(nightly), "baseline_s": base,
        "nightly_first_s": _seconds(first), "nightly_first_cpu_s": _cpu(first),
        "outputs_s": outputs_seconds(main.get("outputs")), "outputs_cpu_s": outputs_seconds(main.get("outputs"), "cpu_seconds"),
    }


def summary_line(v: dict) -> str:
    def g(key: str, digits: int) -> str:
        x = v.get(key)
        return "NA" if x is None else f"{x:.{digits}f}"

    return (f"summary backfill_s={g('backfill_s', 1)} floor_s={g('floor_s', 1)} "
            f"pipeline_over_floor={g('pipeline_over_floor', 1)} baseline_over_pipeline={g('baseline_over_pipeline', 1)} "
            f"nightly_s={g('nightly_s', 1)} peak_rss_gib={g('peak_rss_gib', 2)}")


def _machine(m: dict) -> list[str]:
    v = m.get("versions", {})
    out = [f"- CPU: {m.get('cpu', '?')}, {m.get('cpus', '?')} logical CPUs; memory {m.get('memory_gib', '?')} GiB",
           f"- {m.get('platform', '?')}, Python {m.get('python', '?')}; " + ", ".join(f"{k} {x}" for k, x in v.items())]
    blas = [f"{k}={m[k]}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in m]
    out.append("- OpenBLAS settings in the environment: " + (", ".join(blas) if blas else "none set") + " (left as found)")
    return out


def _workloads(r: dict) -> list[dict]:
    """Every workload result of a run, in the order they ran."""
    out = []
    for run in [*(r.get("attempts") or []), r.get("main") or {}, *(r.get("scaling") or [])]:
        out += [run[k] for k in ("generate", "floor", "backfill", "outputs", "republish_year", "nightly_first", "nightly",
                                 "nightly_year_first", "nightly_year")
                if isinstance(run.get(k), dict)]
    out += [r[k] for k in ("baseline", "prototypes", "sample") if isinstance(r.get(k), dict)]
    return out


def _pipeline_changes(a: str, b: str) -> list[str] | None:
    """Files of the pipeline (not benchmarks/, tests/ or documentation) that differ between commits
    ``a`` and ``b``; None when git cannot tell."""
    import subprocess
    from pathlib import Path

    try:
        out = subprocess.run(["git", "diff", "--name-only", a, b], cwd=Path(__file__).resolve().parent.parent,
                             capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [f for f in out.split() if not f.startswith(("benchmarks/", "tests/", "docs/")) and not f.endswith(".md")]


def _code(r: dict) -> list[str]:
    """Which pipeline code the workloads ran (commit, and files edited but not committed)."""
    seen: dict[tuple, list[str]] = {}
    for w in _workloads(r):
        code = w.get("code") or {}
        for when in ("start", "end"):
            state = code.get(when) or {}
            if state:
                key = (state.get("commit"), tuple(state.get("dirty") or ()))
                labels = seen.setdefault(key, [])
                if w.get("label") not in labels:
                    labels.append(w.get("label"))
    if not seen:
        return []
    states = list(seen)
    first, dirty = states[0]
    later = [c for c, _ in states[1:] if c != first]
    same = all(d == dirty for _, d in states) and all(_pipeline_changes(first, c) == [] for c in later)
    if same:  # one pipeline for every workload (later commits, if any, changed only tests and documentation)
        return [f"- Pipeline code: commit {first} for every workload"
                + (f" (commits made meanwhile — {', '.join(dict.fromkeys(later))} — change no pipeline file)"
                   if later else "")
                + (f", with uncommitted edits to {', '.join(dirty)}." if dirty else ", no uncommitted edits to the pipeline.")]
    lines = ["- Pipeline code: the pipeline changed while the benchmark ran (other work in the same checkout); each "
             "workload ran the code of the state(s) it started and ended in:"]
    for (commit, edits), labels in seen.items():
        changed = _pipeline_changes(first, commit) if commit != first else []
        lines.append(f"  - commit {commit}" + (f" (pipeline files changed since {first}: {', '.join(changed)})"
                                               if changed else "")
                     + (f" with uncommitted edits to {', '.join(edits)}" if edits else ", clean") + ": "
                     + ", ".join(str(x) for x in labels))
    return lines


def _attempts(r: dict) -> list[str]:
    L = []
    for a in r.get("attempts") or []:
        b = a.get("backfill") or {}
        man = (a.get("generate") or {}).get("manifest", {})
        rows = man.get("rows", {})
        L += [f"## Attempt at {a['symbols']} symbols × {a['years']:g} years: stopped", "",
              f"The backfill of the full universe ({', '.join(f'{d} {n:,}' for d, n in rows.items())} rows) was stopped "
              f"after {_f(b.get('wall'))} s: {b.get('error')}. The main results below are for the largest history "
              "that fitted. The stages it finished (same table as below; `process` is missing because it did not end):", ""]
        L += stage_table({"stages": b.get("stages") or []})
        fl = a.get("floor")
        if fl and "error" not in fl:
            cpu = floor_seconds(fl, key="cpu_seconds")
            L += [f"The floor on the full universe: {_f(floor_seconds(fl), 1)} s wall, {_f(cpu, 1)} "
                  f"CPU s, peak RSS {_gib(fl.get('peak_rss'))} GiB.", ""]
    return L


def render(r: dict) -> str:
    main = r.get("main", {})
    v = summary_values(r)
    m0, m1 = r.get("machine_start", {}), r.get("machine_end", {})
    man = (main.get("generate") or {}).get("manifest", {})
    args = r.get("args", {})
    L: list[str] = [
        f"# Scale benchmark — {SYNTHETIC} universe",
        "",
        f"Written by `make bench` (`python -m benchmarks.run`) on {r.get('started', '?')[:10]}; every number below is "
        "measured by that run, none is typed by hand. The universe is **SYNTHETIC** (generated from a seed by "
        "`benchmarks/synthetic.py`: random walks on the real XNYS calendar, splits, listings, delistings, halts, "
        "twice-monthly short-interest settlements). It is not market data.",
        "",
        "## Machine",
        "",
        *_machine(m0),
        f"- Load average (1, 5, 15 min) at the start: {m0.get('load_average')}, at the end: {m1.get('load_average')}. "
        "The machine was shared with other work while this ran: wall times are inflated where the load exceeds the "
        "two CPUs; CPU seconds (all threads of the process) are given beside them.",
        f"- The whole benchmark took {_f(r.get('bench_seconds', 0) / 60, 1)} minutes."
        + (" The environment disables Python's bytecode cache (PYTHONDONTWRITEBYTECODE); the workloads ran with a "
           "cache in the work directory (PYTHONPYCACHEPREFIX), so imports cost what they cost with a normal install."
           if r.get("bytecode_cache") else "")
        + (" Smoke mode: every workload ran in one process with the Prefect tasks as plain functions; peak RSS is "
           "that process's." if r.get("smoke") else ""),
        *_code(r),
        "",
        "## Universe",
        "",
    ]
    if man:
        rows = man.get("rows", {})
        files = man.get("files", [])
        L += [
            f"- {SYNTHETIC}: {main.get('symbols')} symbols × {_years(main.get('years'))}, seed {args.get('seed')}; "
            f"sessions {man.get('start')} … {man.get('end')}, nightly day {man.get('nightly')}",
            "- rows: " + ", ".join(f"{d} {n:,}" for d, n in rows.items()) + f"; {len(files)} Parquet files, "
            f"{sum(f['bytes'] for f in files) / 2**20:,.0f} MiB (generated in {_f(man.get('written_seconds'))} s, "
            "cached for later runs)",
            "- backfill: the history up to the session before its last, served by the benchmark's `SyntheticSource` "
            "through the real `run_pipeline` (collect → validation: GX's engine or the set-based one by frame size → "
            "raw/core load → marts and mart suites → publish); "
            "first nightly: the history's last session, the first run after the backfill (it pays what a backfill "
            "leaves to the next run: no spare snapshot after a full publish); "
            "nightly: the next session's prices and the one settlement that became public that day, the second run "
            "after the backfill — what every later night costs.",
            "",
        ]
    if r.get("attempts"):
        L += [f"**Scale: the requested {args.get('symbols')} symbols × {args.get('years'):g} years did not fit in the "
              f"memory limit of {args.get('rss_limit_gib'):g} GiB (see the attempt below); the main results are for "
              f"{main.get('symbols')} symbols × {main.get('years'):g} years.**", ""]
    L += _attempts(r)
    L += ["## Targets", "", "| | measured | target | met |", "|---|---:|---:|---|"]

    def target(label: str, value, limit, fmt: str, better: str = "le"):
        ok = None if value is None else (value <= limit if better == "le" else value >= limit)
        L.append(f"| {label} | {fmt.format(value) if value is not None else '–'} | {'≤' if better == 'le' else '≥'} "
                 f"{limit:g} | {'yes' if ok else 'no' if ok is not None else '–'} |")

    target("backfill wall, s (run_pipeline; imports and Prefect start excluded)", v["backfill_s"], 60, "{:.1f}")
    target("backfill / floor (wall)", v["pipeline_over_floor"], 3, "{:.1f}×")
    target("peak RSS of the backfill and nightly processes, GiB", v["peak_rss_gib"], 4, "{:.2f}")
    target("nightly wall, s (Prefect start excluded)", v["nightly_s"], 10, "{:.1f}")
    if v.get("nightly_first_s") is not None:
        target("first nightly after the backfill, wall s", v["nightly_first_s"], 10, "{:.1f}")
    target("baseline / pipeline (backfill)", v["baseline_over_pipeline"], 10, "{:.1f}×", better="ge")
    if main.get("nightly_year") and "error" not in main["nightly_year"]:
        target("nightly wall, s, with the opt-in Parquet layout `CAPSPREAD_PARQUET_LAYOUT=year`",
               _seconds(main["nightly_year"]), 10, "{:.1f}")
    modes = [f"{label.replace('nightly_first', 'first nightly')}: marts {mode_of(main.get(label), 'mart')}, "
             f"publish {mode_of(main.get(label), 'publish')}"
             for label in ("backfill", "nightly_first", "nightly") if main.get(label) and "error" not in main.get(label)]
    if modes:
        L += ["", "Modes of the runs (`RunResult.mart_mode`; `mode` in the publish manifest): " + "; ".join(modes) + "."]
    if v.get("backfill_cpu_s") and v.get("floor_cpu_s"):
        L += ["", f"On CPU seconds, which the machine's load distorts less: backfill {_f(v['backfill_cpu_s'])} s, "
              f"floor {_f(v['floor_cpu_s'])} s, ratio {_f(v['backfill_cpu_s'] / v['floor_cpu_s'])}×; nightly "
              f"{_f(v.get('nightly_cpu_s'))} CPU s."]
    L += _output_floor_summary(v)
    L += ["", "## Backfill — the pipeline, per stage", "",
          "Stages nest (› = inside the stage above). `imports` and the Prefect server start are paid once per "
          "process and are not part of the run's seconds.", ""]
    L += stage_table(main.get("backfill"))
    L += _modes(main.get("backfill"))
    L += ["## Floor — same files, same rules, least work", ""]
    L += stage_table(main.get("floor"))
    checks = (main.get("floor") or {}).get("checks", {})
    if checks:
        L += ["Rule counts of the floor's aggregate queries (what the landing suites check): "
              + "; ".join(f"{k}: " + ", ".join(f"{c}={x}" for c, x in d.items() if c != "rows" and x)
                          for k, d in checks.items()
                          if any(x for c, x in d.items() if c != "rows")) + ".", ""]
    if main.get("outputs") and "error" not in main["outputs"]:
        L += ["## The contract's outputs, written once — no logic", "",
              "On the rows the backfill left (its warehouse, read-only), each output the contract asks for written "
              "once by DuckDB from DuckDB tables (`benchmarks.floor.outputs`): the warehouse's core rows beside the "
              "raw rows the floor inserted, and its mart rows; the snapshot (core, marts, meta) in the snapshot's "
              "storage version; one Parquet file per published table with the publish's writer settings. No parsing, "
              "validation, transforms or orchestration.", ""]
        L += stage_table(main.get("outputs"))
    L += ["## Nightly — one new session and one settlement on the backfilled warehouse", ""]
    L += stage_table(main.get("nightly"))
    L += _modes(main.get("nightly"))
    fn = floor_seconds(main.get("floor"), "nightly")
    if fn is not None and v.get("nightly_s"):
        L += [f"The floor for the same nightly files is {_f(fn, 2)} s (scan, insert, rules with a 40-day look-back).", ""]
    if main.get("nightly_first"):
        L += ["## First nightly after the backfill", "",
              "The history's last session, on the warehouse the backfill left: one more day than the backfill, "
              "published on top of the backfill's full publish.", ""]
        L += stage_table(main.get("nightly_first"))
        L += _modes(main.get("nightly_first"))
    L += _year_layout(main)
    L += _baseline(r.get("baseline"), v)
    L += _prototypes(r.get("prototypes"), main.get("backfill"))
    L += ["## Real sample run", "", "`run_pipeline` on the embedded real-data sample (profile `sample`, as of "
          f"{(r.get('sample') or {}).get('as_of', '2026-08-21')}, fresh home).", ""]
    L += stage_table(r.get("sample"))
    L += _scaling(r, main)
    L += _dominant(main)
    L += [summary_line(v)]
    return "\n".join(L) + "\n"


def _output_floor_summary(v: dict) -> list[str]:
    """The floor plus the contract's outputs written once, against the issue's floor and the backfill."""
    f_s, o_s, b_s = v.get("floor_s"), v.get("outputs_s"), v.get("backfill_s")
    if not (f_s and o_s and b_s):
        return []
    least = f_s + o_s
    cpu = v["floor_cpu_s"] + v["outputs_cpu_s"] if v.get("floor_cpu_s") and v.get("outputs_cpu_s") else None
    return ["", f"What the outputs cost by themselves (measured in this run, see \"The contract's outputs, written "
            f"once\" below): the floor plus writing each output once, with no logic, takes {_f(least)} s wall "
            f"({_f(least / f_s)}× the floor; {_f(cpu)} CPU s). Against that, the "
            f"backfill is {_f(b_s / least)}× ({_f(b_s - least)} s for parsing, validation, transforms, mart "
            "checks, Prefect and the run's bookkeeping)."]


def _year_layout(main: dict) -> list[str]:
    """The nightly on a copy of the backfilled home whose Parquet is in the opt-in year layout."""
    n, prep = main.get("nightly_year"), main.get("republish_year")
    if not n:
        return []
    L = ["## Nightly with the opt-in Parquet layout (`CAPSPREAD_PARQUET_LAYOUT=year`)", "",
         "The same nightly on a copy of the backfilled home, republished first with `core.prices_daily`, "
         "`marts.market_scoreboard` and `marts.index_weekly` split into one Parquet folder per calendar year "
         "(the default layout, one file per table, is the contract's; `docs/bi.md`). The nightly rewrites the "
         "years its rows touch and links the others from the previous generation. As in the default layout, "
         "this is the second nightly after the backfill."
         + (f" The republish (not part of the run) took {_f(prep.get('seconds'))} s." if prep and "error" not in prep
            else "")
         + (f" The first nightly on it took {_f(_seconds(main['nightly_year_first']))} s."
            if _seconds(main.get("nightly_year_first")) else ""), ""]
    if "error" in n:
        return L + [f"Stopped: {n['error']}", ""]
    L += stage_table(n)
    L += _modes(n)
    return L


def mode_of(result: dict | None, what: str) -> str:
    """'full' or 'incremental' for a run's marts or publish ('–' when not recorded)."""
    if not result or "error" in result:
        return "–"
    if what == "publish":
        return (result.get("publish_manifest") or {}).get("mode") or (result.get("publish_mode") or "–").split(":")[0]
    return (result.get("mart_mode") or "–").split(":")[0]


def _modes(result: dict | None) -> list[str]:
    if not result or "error" in result or not (result.get("mart_mode") or result.get("publish_manifest")):
        return []
    man = result.get("publish_manifest") or {}
    publish = man.get("mode") or "–"
    if man.get("mode_reason"):
        publish += f" ({man['mode_reason']})"
    return [f"Mart mode (`RunResult.mart_mode`): {result.get('mart_mode') or '–'}. Publish mode (manifest `mode`): "
            f"{publish}.", ""]


def _baseline(b: dict | None, v: dict) -> list[str]:
    L = ["## Naive baseline — pandas, GX on pandas, row-wise inserts (measured on subsets, extrapolated)", ""]
    if not b or "error" in b:
        return L + [f"*not measured: {(b or {}).get('error', 'skipped')}*", ""]
    L += ["| stage | measured (rows, s) | extrapolated rows | extrapolated s | rows/s |", "|---|---|---:|---:|---:|"]
    for s in b["stages"]:
        pts = "; ".join(f"{int(r):,} → {t:.2f}" for r, t in s["points"])
        L.append(f"| {s['name']} | {pts} | {s['rows']:,} | {_f(s['seconds'])} | {_f(s.get('rows_per_second'), 0)} |")
    L.append(f"| **total** | | | **{_f(b['total_seconds'])}** ({_f(b['total_seconds'] / 3600, 1)} h) | |")
    L += ["", "The baseline does less than the pipeline (no core merge, no marts but the scoreboard, no publish), "
          f"so the ratio is conservative: baseline / pipeline = {_f(v.get('baseline_over_pipeline'))}×.", ""]
    return L


def _prototypes(p: dict | None, backfill: dict | None = None) -> list[str]:
    L = ["## Bottlenecks and measured changes (prototypes)", ""]
    if not p or "error" in p:
        why = (p or {}).get("error") or "not asked for (`--prototypes`: changes measured before they are applied)"
        return L + [f"*not measured: {why}*", ""]
    for c in p.get("changes", []):
        if c.get("before_from") and c.get("before") is None:
            c["before"], c["before_cpu"] = _seconds(backfill, c["before_from"]), _cpu(backfill, c["before_from"])
    applied = p.get("applied") or []
    if applied:
        L += ["Applied in the pipeline since earlier runs (their before/after numbers are in this file's history): "
              + "; ".join(f"{what} ({where})" for where, what in applied) + ".", ""]
    if not p.get("changes") and not p.get("errors"):
        return L + ["*no change left to measure*", ""]
    L += ["Each change is measured in the benchmark process on the same files, before and after, with the pipeline's "
          "own functions and SQL; the benchmark does not change the pipeline. "
          + ("A change marked as applied was made in the pipeline while this version of the benchmark was written; "
             "the backfill above already runs it." if any(c.get("applied") for c in p.get("changes", [])) else
             "None of them is applied in the pipeline yet."), "",
          "| change | what is measured | before s (CPU s) | after s (CPU s) | speed-up | memory before → after | check |",
          "|---|---|---:|---:|---:|---|---|"]
    for c in p.get("changes", []):
        b, a = c.get("before"), c.get("after")
        speed = b / a if b and a else None
        mem = (f"+{_f(c['before_rss'] / GIB, 2)} → +{_f(c['after_rss'] / GIB, 2)} GiB" if c.get("before_rss") is not None
               and c.get("after_rss") is not None else "")
        name = c["name"] + (" (now applied in the pipeline)" if c.get("applied") else "")
        L.append(f"| {name} | {c['what']} | {_f(b, 2)} ({_f(c.get('before_cpu'), 2)}) | {_f(a, 2)} "
                 f"({_f(c.get('after_cpu'), 2)}) | {_f(speed)}× | {mem} | {c.get('check', '')} |")
    for c in p.get("changes", []):
        if c.get("detail"):
            L += ["", f"- **{c['name']}**: {c['detail']}"]
    for e in p.get("errors", []):
        L += ["", f"- prototype failed: {e}"]
    return L + [""]


def _scaling(r: dict, main: dict) -> list[str]:
    pts = r.get("scaling") or []
    L = ["## Scaling", ""]
    if not pts:
        return L + ["*not measured (--no-scaling)*", ""]
    years = pts[0].get("years")
    L += [f"Backfill and nightly at {', '.join(str(p['symbols']) for p in pts)} {SYNTHETIC} symbols × {_years(years)} "
          f"(fresh home each), with the main run ({main.get('symbols')} × {_years(main.get('years'))}) beside them.", "",
          "| symbols × years | rows | floor s | backfill s | backfill CPU s | µs per row (wall) | backfill peak RSS GiB | "
          "nightly s | nightly CPU s | nightly peak RSS GiB | nightly marts / publish |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    rows_list = []
    for p in [*pts, {**main, "main": True}]:
        man = (p.get("generate") or {}).get("manifest", {})
        rows = sum(f["rows"] for f in man.get("files", []) if f["role"] == "history") if man else None
        b, n = p.get("backfill"), p.get("nightly")
        bs = _seconds(b)
        per = bs / rows * 1e6 if bs and rows else None
        label = f"{p['symbols']} × {p['years']:g}" + (" (main)" if p.get("main") else "")
        L.append(f"| {label} | {_f(rows, 0)} | {_f(floor_seconds(p.get('floor')), 1)} | {_f(bs)} | {_f(_cpu(b))} | "
                 f"{_f(per, 2)} | {_gib((b or {}).get('peak_rss'))} | {_f(_seconds(n))} | {_f(_cpu(n))} | "
                 f"{_gib((n or {}).get('peak_rss'))} | {mode_of(n, 'mart')} / {mode_of(n, 'publish')} |")
        if not p.get("main"):
            rows_list.append((p["symbols"], rows, bs, _cpu(b), (b or {}).get("peak_rss"), _seconds(n)))
    good = [x for x in rows_list if x[1] and x[2]]
    if len(good) >= 2:
        (s1, r1, t1, c1, m1, _), (s2, r2, t2, c2, m2, _) = good[0], good[-1]
        L += ["", f"From {s1} to {s2} symbols the rows grow {r2 / r1:.1f}× and the backfill wall time {t2 / t1:.1f}× "
              f"(CPU {c2 / c1:.1f}×)" + (f", peak RSS {m2 / m1:.1f}×" if m1 and m2 else "") + "."]
        steps = []
        for (sa, ra, ta, ca, ma, na), (sb, rb, tb, cb, mb, nb) in zip(good, good[1:]):
            steps.append((sa, sb, (tb - ta) / (rb - ra) * 1e6, (mb - ma) / (rb - ra) * 1e6 / GIB if ma and mb else None))
        L.append("Marginal cost per row between successive points (the fixed costs — imports aside, a few seconds of "
                 "GX, Prefect and publishing per run — cancel out): "
                 + "; ".join(f"{a} → {b} symbols: {_f(us, 2)} µs per row"
                             + (f", {_f(gm, 2)} GiB per million rows" if gm else "")
                             for a, b, us, gm in steps) + ".")
        if len(steps) >= 2 and steps[0][2] > 0:
            ratio = steps[-1][2] / steps[0][2]
            L.append(f"The last step costs {ratio:.2f}× the first per row: "
                     + ("growth is about linear in the rows." if 0.67 <= ratio <= 1.5 else
                        "growth is worse than linear." if ratio > 1.5 else "the per-row cost still falls (fixed costs)."))
    same = [p for p in pts if p["symbols"] == main.get("symbols")]
    if same and _seconds(main.get("nightly")) and _seconds(same[0].get("nightly")):
        a, b = _seconds(same[0]["nightly"]), _seconds(main["nightly"])
        L += ["", f"Nightly on {main['symbols']} symbols: {_f(a)} s with {_years(same[0]['years'])} held, "
              f"{_f(b)} s with {_years(main['years'])} held ({b / a:.1f}×): "
              + ("the nightly cost grows with the history held." if b / a > 1.5 else "about flat in the history held.")]
    return L + [""]


def self_times(stages: list[dict]) -> list[dict]:
    """Each stage's own CPU and wall seconds (children excluded). Children finish before their
    parent, so a stage's children are the deeper stages listed since the last one at its depth."""
    out = []
    for i, s in enumerate(stages):
        d = s.get("depth", 0)
        kids = []
        for j in range(i - 1, -1, -1):
            dj = stages[j].get("depth", 0)
            if dj <= d:
                break
            if dj == d + 1:
                kids.append(stages[j])
        out.append({**s, "self_cpu": s["cpu_seconds"] - sum(k["cpu_seconds"] for k in kids),
                    "self_wall": s["seconds"] - sum(k["seconds"] for k in kids), "parent": bool(kids)})
    return out


def _years(y) -> str:
    return f"{y:g} year" + ("" if y == 1 else "s") if y is not None else "?"


def _dominant(main: dict) -> list[str]:
    L = ["## What dominates", "", "Own CPU seconds of each stage (its timed sub-stages subtracted), largest first.", ""]
    for label in ("backfill", "nightly"):
        res = main.get(label)
        total = _cpu(res)
        if not res or "error" in res or not total:
            continue
        inside = [s for s in self_times(res["stages"]) if s["name"] not in EXCLUDED and s["name"] != RUN_TOTAL]
        top = sorted(inside, key=lambda s: -s["self_cpu"])[:6]
        L.append(f"- **{label}** ({_f(total)} CPU s, {_f(_seconds(res))} s wall in run_pipeline): " + "; ".join(
            f"{s['name']}{' (own)' if s['parent'] else ''} {_f(s['self_cpu'])} CPU s "
            f"({100 * s['self_cpu'] / total:.0f} %)" for s in top) + ".")
    return L + [""]


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")
