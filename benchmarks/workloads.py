"""The benchmark's workloads; each runs in a process of its own (``python -m benchmarks.workloads
NAME SPEC.json OUT.json``) so that its peak RSS is its own and imports are paid as a user pays them.

- ``pipeline``: the product: ``flows.nightly.run_pipeline`` on a benchmark home, the SYNTHETIC source
  plugged in as the run's source, every stage timed by wrapping the real functions (nothing of the
  pipeline is replaced). Used for the backfill, the nightly run and the real sample run.
- ``floor``: a Polars scan of the same files, one Arrow insert into DuckDB, the landing rules as
  one DuckDB aggregate query per dataset (``benchmarks.floor``).
- ``outputs``: what writing the contract's outputs costs by itself, on the rows the backfill left
  (``benchmarks.floor.outputs``).
- ``baseline``: the naive tutorial pipeline on subsets, extrapolated (``benchmarks.baseline``).
- ``prototype``: a proposed change, not applied yet, measured before and after on the same files
  (``benchmarks.prototypes``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import date
from pathlib import Path

_T0 = time.perf_counter()


def prefect_env(prefect_home: Path) -> None:
    """Prefect as ``capspread run`` uses it: ephemeral, offline, quiet. The benchmark shares one
    ``PREFECT_HOME`` between its workloads, so the database migrations run once."""
    prefect_home.mkdir(parents=True, exist_ok=True)
    os.environ.pop("PREFECT_API_URL", None)
    os.environ["PREFECT_HOME"] = str(prefect_home)
    os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "600"
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def _height(frame) -> int:
    return frame.height if frame is not None else 0


def instrument(rec, synthetic_data: Path | None = None) -> None:
    """Time the pipeline's own functions where the flow calls them (module attributes)."""
    import expectations.runner as runner
    import expectations.setbased as setbased
    import flows.health as health
    import flows.load as load
    import flows.marts as marts
    import flows.nightly as nightly
    import warehouse.db as db
    import warehouse.publish as publish

    if synthetic_data is not None:
        from benchmarks.synthetic import SyntheticSource

        original = nightly._sources
        rec.patch(nightly, "_sources", lambda profile, config: (
            [SyntheticSource(synthetic_data)] if profile == "synthetic" else original(profile, config)))

    import functools

    from sources.base import Batch

    declared = Batch.__dict__["sha256"]  # a property (hashes on every access) or a cached_property (once)
    hashing = declared.func if isinstance(declared, functools.cached_property) else declared.fget

    def sha256(self):
        with rec.stage("sha256 of a payload (Batch.sha256)"):
            return hashing(self)

    if isinstance(declared, functools.cached_property):
        timed = functools.cached_property(sha256)
        timed.__set_name__(Batch, "sha256")
    else:
        timed = property(sha256)
    rec.patch(Batch, "sha256", timed)
    batches_rows = lambda a, k, r: sum(_height(b.frame) for b in r)  # noqa: E731
    rec.wrap(nightly, "collect", "collect (sources + inbox, Prefect task)", batches_rows)
    rec.wrap(nightly, "validate", "validate (Prefect task)", lambda a, k, r: sum(_height(b.frame) for b in a[0]))
    # every suite goes through run_suite: GX's pandas engine up to CAPSPREAD_GX_MAX_ROWS rows, the set-based one above
    kind = ["landing"]  # what the suite running now validates, for its engine's stage name

    def suite_label(a, k) -> str:
        kind[0] = "marts" if str(a[0]).startswith("marts.") else "landing"
        return "validation, marts" if kind[0] == "marts" else "validation, landing (GX or set-based)"

    rec.wrap(runner, "run_suite", suite_label, lambda a, k, r: a[2].height)
    rec.wrap(runner, "gx_suite", lambda a, k: f"GX pandas engine, {kind[0]} (gx_suite)", lambda a, k, r: a[2].height)
    rec.wrap(setbased, "checks", lambda a, k: f"set-based engine, {kind[0]} (setbased.checks)",
             lambda a, k, r: a[1].height)
    rec.wrap(nightly, "load", "load (Prefect task, one transaction)")
    rec.wrap(nightly, "apply_batches", "apply_batches", lambda a, k, r: None)
    rec.wrap(load, "usable_rows", "point-in-time window (usable_rows)", lambda a, k, r: r[0].height)
    rec.wrap(load, "write_landed", "land payloads (write files, beside the load; its thread's CPU)", depth=3)
    rec.wrap(db, "insert_raw", "raw insert (Arrow)", lambda a, k, r: r)
    rec.wrap(db, "conform_core", "conform core", lambda a, k, r: r.height)
    if hasattr(db, "load_core"):
        rec.wrap(db, "load_core", "core load (append, or prefer sources + MERGE)", lambda a, k, r: a[2].height)
        rec.wrap(db, "holds_any_key", "core holds a key of the batch? (holds_any_key)", lambda a, k, r: a[2].height)
    rec.wrap(db, "prefer_sources", "prefer sources (join against core)", lambda a, k, r: r.height)
    rec.wrap(db, "merge_core", "core MERGE", lambda a, k, r: a[2].height)
    rec.wrap(nightly, "finish_run", "finish_run")
    rec.wrap(load, "mart_since", "mart mode (mart_since)")

    def mode(since) -> str:
        return "incremental" if since is not None else "full"

    def wrap_if(owner, attr: str, name, rows=None) -> None:
        """Marts are built whole (``build_marts``) or per-symbol in symbol chunks plus the other marts
        (``symbol_marts`` / ``other_marts``), depending on the pipeline's version: time what exists."""
        if hasattr(owner, attr):
            rec.wrap(owner, attr, name, rows)

    frames_rows = lambda a, k, r: sum(f.height for f in r.values())  # noqa: E731
    since_of = lambda a, k: k.get("since", a[3] if len(a) > 3 else None)  # noqa: E731
    wrap_if(load, "build_marts", lambda a, k: f"build marts (transforms, {mode(since_of(a, k))})", frames_rows)
    wrap_if(marts, "other_marts", "build marts: other marts (transforms, full)", frames_rows)
    wrap_if(marts, "symbol_chunks", "mart symbol chunks (symbol_chunks)", lambda a, k, r: sum(len(c) for c in r))
    wrap_if(marts, "symbol_marts", lambda a, k: f"build marts: per-symbol marts (transforms, {mode(since_of(a, k))})",
            frames_rows)
    wrap_if(marts, "_closes", "read closes for marts (_closes)", lambda a, k, r: None)
    wrap_if(db, "insert_mart", "insert mart rows (insert_mart)", lambda a, k, r: r)
    rec.wrap(marts, "read_core", "read core for marts", lambda a, k, r: None)
    rec.wrap(load, "check_marts", "mart suites (check_marts)", lambda a, k, r: sum(f.height for f in a[3].values()))

    def replaced(a, k) -> str:
        where = k["where"] if "where" in k else (a[3] if len(a) > 3 else None)
        return "replace marts (rows from mart_since)" if where else "replace marts (whole tables)"

    rec.wrap(db, "replace_mart", replaced, lambda a, k, r: r)
    rec.wrap(load, "source_health", "source health")
    rec.wrap(health, "update_disagreements", "source disagreements (update_disagreements)")
    rec.wrap(nightly, "build_docs", "Data Docs (build_docs, beside the publish; its thread's CPU)", depth=1)
    rec.wrap(nightly, "publish_snapshot", "publish (Prefect task)",
             lambda a, k, r: sum(r.get("tables", {}).values()))
    rec.wrap(publish, "_write_snapshot", "publish: DuckDB snapshot, full", lambda a, k, r: sum(r.values()))
    rec.wrap(publish, "_update_snapshot", "publish: DuckDB snapshot, incremental",
             lambda a, k, r: sum(r[0].values()) if r and r[0] else None)
    rec.wrap(publish, "_write_parquet", "publish: Parquet files")
    if hasattr(publish, "_append_table"):
        rec.wrap(publish, "_append_table", lambda a, k: f"publish: Parquet append, {a[3]}.{a[4]}")
    if hasattr(publish, "_copy_file"):
        rec.wrap(publish, "_copy_file", "publish: copy of the previous snapshot (_copy_file)")


def warm_up_prefect() -> None:
    """Start Prefect's temporary server with a task that does nothing (``run_pipeline``'s first
    task would start it otherwise, and its start-up would count as collecting)."""
    from prefect import task

    @task(name="benchmark-warm-up")
    def nothing() -> int:
        return 0

    nothing()


def pipeline(spec: dict) -> dict:
    """One ``run_pipeline`` on ``spec['home']`` as of ``spec['as_of']``."""
    from benchmarks.measure import Recorder

    home_root = Path(spec["home"])
    home_root.mkdir(parents=True, exist_ok=True)
    os.environ.update(spec.get("environ") or {})  # e.g. CAPSPREAD_PARQUET_LAYOUT for a variant run
    with_prefect = spec.get("prefect", True)
    if with_prefect:
        prefect_env(Path(spec.get("prefect_home") or home_root / ".prefect"))
    rec = Recorder(trace=spec.get("trace")).start()
    with rec.stage("imports (capspread, GX, Prefect)"):
        from capspread.config import Config, Home
        import expectations.runner  # noqa: F401  (GX is imported by the pipeline's first suite)
        import flows.nightly as nightly

        if not with_prefect:  # smoke mode: the tasks run as plain functions, no Prefect server
            for name in ("collect", "validate", "load", "publish_snapshot"):
                rec.patch(nightly, name, getattr(nightly, name).fn)
        instrument(rec, Path(spec["data"]) if spec.get("data") else None)
    if with_prefect:
        with rec.stage("Prefect ephemeral server start (excluded from the run)"):
            warm_up_prefect()
    config = Config.load(Path(spec["config"])) if spec.get("config") else Config.load()
    home = Home(home_root)
    as_of = date.fromisoformat(spec["as_of"])
    try:
        with rec.stage("run_pipeline (total)") as h:
            result = nightly.run_pipeline(as_of, spec.get("profile", "synthetic"), home, config)
            h["rows"] = sum(r.rows for r in result.datasets.values())
    finally:
        rec.stop()
        rec.restore()
    return {
        "run_id": result.run_id, "exit_code": result.exit_code, "status": result.status,
        "seconds": result.seconds, "rows": {d: r.rows for d, r in result.datasets.items()},
        "core_changed": {d: r.core_changed for d, r in result.datasets.items()},
        "checks_failed": {d: r.checks_failed for d, r in result.datasets.items()},
        "warnings": [w for r in result.datasets.values() for w in r.warnings][:10],
        "marts": result.marts, "stages": rec.as_dicts(),
        "mart_mode": result.mart_mode, "mart_since": result.mart_since,
        "publish_mode": result.publish_mode, "publish_manifest": _manifest_mode(home),
    }


def _manifest_mode(home) -> dict:
    """The publish mode the run's manifest records (``mode``, ``mode_reason``, ``base_run_id``)."""
    try:
        manifest = json.loads((home.published / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    return {k: manifest.get(k) for k in ("mode", "mode_reason", "base_run_id", "run_id")}


def republish(spec: dict) -> dict:
    """Publish the home's warehouse again in full, under the run id of its last publish, with
    ``spec['layout']`` as the Parquet layout: prepares a home whose next nightly publishes in that
    layout incrementally. Timed, not part of any run."""
    from capspread.config import Home
    from warehouse.publish import publish

    home = Home(Path(spec["home"]))
    manifest = json.loads((home.published / "manifest.json").read_text())
    w, c = time.perf_counter(), time.process_time()
    out = publish(home.warehouse, home.published, run_id=manifest["run_id"],
                  as_of=date.fromisoformat(manifest["as_of_date"]), parquet_layout=spec["layout"])
    return {"seconds": time.perf_counter() - w, "cpu_seconds": time.process_time() - c, "mode": out["mode"],
            "parquet_layout": out["parquet_layout"]}


WORKLOADS = {"pipeline": "benchmarks.workloads:pipeline", "republish": "benchmarks.workloads:republish",
             "generate": "benchmarks.synthetic:run",
             "floor": "benchmarks.floor:run", "outputs": "benchmarks.floor:outputs",
             "baseline": "benchmarks.baseline:run", "prototype": "benchmarks.prototypes:run"}


def execute(name: str, spec: dict) -> dict:
    """Run workload ``name`` with ``spec`` in this process; its result with the process's figures."""
    import importlib

    from benchmarks.measure import peak_rss_bytes

    module, function = WORKLOADS[name].split(":")
    w0, c0 = time.perf_counter(), time.process_time()
    result = getattr(importlib.import_module(module), function)(spec)
    result.update(workload=name, process_seconds=time.perf_counter() - (_T0 if spec.get("own_process") else w0),
                  process_cpu_seconds=time.process_time() - (0.0 if spec.get("own_process") else c0),
                  peak_rss=peak_rss_bytes())
    return result


def main(argv: list[str]) -> int:
    name, spec_path, out_path = argv
    try:  # if the machine runs out of memory, the benchmark is the process to go, not a neighbour's
        Path("/proc/self/oom_score_adj").write_text("1000")
    except OSError:
        pass
    spec = {**json.loads(Path(spec_path).read_text()), "own_process": True}
    result = execute(name, spec)
    Path(out_path).write_text(json.dumps(result, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
