"""The project's deployments (``prefect.yaml``) and how their runs share one warehouse.

``capspread serve`` reads ``prefect.yaml`` — the file ``prefect deploy --all`` reads for a work-pool
install — and serves its deployments from one process, so both ways run the same schedules and
parameters.

One writer at a time, three layers:

- runs started by a deployment first take the slot of the Prefect global concurrency limit
  ``capspread-warehouse`` (limit 1): a scheduled nightly *waits* while a backfill runs, instead of
  failing (``warehouse_slot``);
- a backfill holds ``.capspread.backfill.lock`` for its whole range and a nightly shares it, so a run
  started by hand can never slip between two days of a backfill (``backfill_running``,
  ``no_backfill_running``);
- ``flows.nightly.exclusive`` refuses a second writer at once, whatever started it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from capspread.config import REPO_ROOT, Home

PROJECT_FILE = REPO_ROOT / "prefect.yaml"
WAREHOUSE_LIMIT = "capspread-warehouse"
# how long a deployment run waits for the warehouse slot before it fails (and notifies)
DEFAULT_SLOT_TIMEOUT = 6 * 3600


# --------------------------------------------------------------------------------------------
# prefect.yaml → served deployments


def read_project(path: Path | None = None) -> list[dict[str, Any]]:
    """The ``deployments:`` entries of ``prefect.yaml``."""
    import yaml

    path = Path(path or PROJECT_FILE)
    with path.open() as fh:
        raw = yaml.safe_load(fh) or {}
    specs = raw.get("deployments") or []
    for spec in specs:
        missing = [k for k in ("name", "entrypoint") if not spec.get(k)]
        if missing:
            raise ValueError(f"{path}: a deployment lacks {', '.join(missing)}: {spec}")
    return specs


def schedules_of(spec: dict[str, Any]) -> list:
    """The ``schedules:`` of one ``prefect.yaml`` deployment as Prefect schedule objects."""
    from prefect.schedules import Cron, Interval, RRule

    out = []
    for s in spec.get("schedules") or []:
        common = {"timezone": s.get("timezone"), "active": s.get("active", True), "parameters": s.get("parameters")}
        if "cron" in s:
            out.append(Cron(s["cron"], day_or=s.get("day_or", True), **common))
        elif "interval" in s:
            out.append(Interval(s["interval"], anchor_date=s.get("anchor_date"), **common))
        elif "rrule" in s:
            out.append(RRule(s["rrule"], **common))
        else:
            raise ValueError(f"deployment {spec['name']!r}: schedule {s} has no cron, interval or rrule")
    return out


def runner_deployments(path: Path | None = None, paused: bool = False) -> list:
    """One served deployment per ``prefect.yaml`` entry (work pools do not apply to ``serve``)."""
    from prefect.flows import load_flow_from_entrypoint
    from prefect.types.entrypoint import EntrypointType

    deployments = []
    for spec in read_project(path):
        entrypoint = spec["entrypoint"]
        flow = load_flow_from_entrypoint(entrypoint, use_placeholder_flow=False)
        deployments.append(
            flow.to_deployment(
                name=spec["name"],
                schedules=schedules_of(spec),
                paused=paused,
                parameters=spec.get("parameters") or {},
                description=spec.get("description"),
                tags=spec.get("tags") or [],
                concurrency_limit=_concurrency_limit(spec.get("concurrency_limit")),
                entrypoint_type=EntrypointType.FILE_PATH if ":" in entrypoint else EntrypointType.MODULE_PATH,
            )
        )
    return deployments


def _concurrency_limit(value: Any):
    """``concurrency_limit:`` as ``prefect deploy`` reads it: a number, or ``{limit, collision_strategy}``."""
    if isinstance(value, dict):
        from prefect.client.schemas.objects import ConcurrencyLimitConfig

        return ConcurrencyLimitConfig(**value)
    return value


def api_url() -> str | None:
    """The Prefect API this process talks to (environment or active Prefect profile)."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


def ensure_warehouse_limit() -> bool:
    """Create the global concurrency limit ``capspread-warehouse`` (1 slot) if it is missing.

    Returns True when it was created. An existing limit is left as it is.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(WAREHOUSE_LIMIT)
            return False
        except ObjectNotFound:
            pass
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=WAREHOUSE_LIMIT, limit=1))
        except ObjectAlreadyExists:  # another run created it a moment ago
            return False
        return True


def serve_project(path: Path | None = None, paused: bool = False, limit: int | None = None,
                  on_ready: Callable[[list[str]], None] | None = None) -> None:
    """Register the deployments of ``prefect.yaml`` and run their flow runs until SIGTERM or Ctrl-C
    (either one stops the same way: schedules paused, the process exits)."""
    import asyncio

    from prefect.runner import Runner

    deployments = runner_deployments(path, paused=paused)
    ensure_warehouse_limit()
    runner = Runner(name="capspread", pause_on_shutdown=True, limit=limit)
    for deployment in deployments:
        runner.add_deployment(deployment)

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    runner.handle_sigterm = stop  # Prefect's own SIGTERM handler does not await its shutdown
    if on_ready:
        on_ready([f"{d.flow_name}/{d.name}" for d in deployments])
    try:
        asyncio.run(runner.start())
    except KeyboardInterrupt:
        pass


# --------------------------------------------------------------------------------------------
# one writer at a time


def _deployment_run() -> bool:
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return bool(ctx and ctx.flow_run and ctx.flow_run.deployment_id)


def slot_timeout() -> float:
    return float(os.environ.get("CAPSPREAD_SLOT_TIMEOUT_SECONDS", DEFAULT_SLOT_TIMEOUT))


@contextmanager
def warehouse_slot() -> Iterator[None]:
    """In a run started by a deployment: wait for the ``capspread-warehouse`` slot. Elsewhere
    (``capspread run`` in ephemeral mode) nothing: the file lock decides at once."""
    with ExitStack() as stack:
        if _deployment_run():
            from prefect.concurrency.sync import concurrency

            ensure_warehouse_limit()
            timeout = slot_timeout()
            try:
                stack.enter_context(concurrency(WAREHOUSE_LIMIT, occupy=1, timeout_seconds=timeout, strict=True,
                                                raise_on_lease_renewal_failure=False))
            except TimeoutError:
                raise TimeoutError(
                    f"waited {timeout:.0f} s for the warehouse (global concurrency limit {WAREHOUSE_LIMIT!r}) "
                    "while another run was writing; nothing ran"
                ) from None
        yield


@contextmanager
def _backfill_gate(home: Home, *, exclusive: bool, message: str) -> Iterator[None]:
    home.root.mkdir(parents=True, exist_ok=True)
    handle = (home.root / ".capspread.backfill.lock").open("w")
    try:
        fcntl.flock(handle, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        from flows.nightly import RunLocked

        raise RunLocked(message) from exc
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def backfill_running(home: Home):
    """Held by a backfill for its whole range: no other run writes between two of its days."""
    return _backfill_gate(
        home, exclusive=True,
        message=f"another capspread run or backfill is writing {home.warehouse}; wait for it to finish "
                "and run the backfill again (it resumes where it stopped)",
    )


def no_backfill_running(home: Home):
    """Shared by nightly runs: refuses while a backfill holds the warehouse."""
    return _backfill_gate(
        home, exclusive=False,
        message=f"a capspread backfill is writing {home.warehouse}; this run would land between two of "
                "its days, so it refuses: run again when the backfill has finished",
    )
