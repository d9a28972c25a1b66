"""Stage timing: wall seconds, CPU seconds (all threads of the process; a stage run in a thread of
its own beside others: that thread's) and peak RSS per stage.

Peak RSS of a stage is the largest resident set seen by a sampler thread (every ``interval``
seconds, from ``/proc/self/statm``) while the stage ran; the process peak is the kernel's
high-water mark (``VmHWM``, the same as ``getrusage().ru_maxrss``), which no sample can miss.
Each workload runs in its own process, so each has its own high-water mark.
"""

from __future__ import annotations

import functools
import os
import resource
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_rss_bytes() -> int:
    """The process's high-water mark (VmHWM; ru_maxrss where /proc is missing)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class Stage:
    name: str
    seconds: float
    cpu_seconds: float
    peak_rss: int
    rows: int | None = None
    calls: int = 1
    depth: int = 0
    note: str = ""


@dataclass
class Recorder:
    """Records stages; ``wrap`` times every call of a function under one stage name (calls add up)."""

    interval: float = 0.01
    trace: str | None = None  # a JSON-lines file: every finished stage, and the open stages every 2 s
    stages: list[Stage] = field(default_factory=list)
    _open: list[list] = field(default_factory=list)  # [name, peak] of the stages running now
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _patches: list = field(default_factory=list)

    def _write(self, record: dict) -> None:
        if self.trace:
            import json

            with open(self.trace, "a") as fh:
                fh.write(json.dumps(record, default=str) + "\n")

    def start(self) -> "Recorder":
        def sample() -> None:
            beat = time.perf_counter()
            while not self._stop.wait(self.interval):
                rss = rss_bytes()
                with self._lock:
                    for entry in self._open:
                        if rss > entry[1]:
                            entry[1] = rss
                    open_now = [e[0] for e in self._open]
                if self.trace and time.perf_counter() - beat >= 2.0:
                    beat = time.perf_counter()
                    self._write({"t": round(time.perf_counter(), 2), "rss": rss, "open": open_now})

        self._thread = threading.Thread(target=sample, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    @contextmanager
    def stage(self, name: str, rows: int | None = None, note: str = "", depth: int | None = None):
        """Time a stage. Stages nest by the stages open in the same thread; a stage that runs
        beside others in a thread of its own gives its ``depth`` and counts its own thread's CPU
        seconds only (the process's would include the stages it overlaps)."""
        me = threading.get_ident()
        entry = [name, rss_bytes(), me]
        with self._lock:
            self._open.append(entry)
            if depth is None:
                depth = sum(1 for e in self._open if e[2] == me) - 1
                clock = time.process_time
            else:
                depth += sum(1 for e in self._open if e[2] == me) - 1
                clock = time.thread_time
        w0, c0 = time.perf_counter(), clock()
        holder = {"rows": rows}
        try:
            yield holder
        finally:
            wall, cpu = time.perf_counter() - w0, clock() - c0
            with self._lock:
                self._open.remove(entry)
                peak = max(entry[1], rss_bytes())
            st = Stage(name, wall, cpu, peak, holder.get("rows"), 1, depth, note)
            self._write({"stage": asdict(st)})
            self._add(st)

    def _add(self, st: Stage) -> None:
        for old in self.stages:
            if old.name == st.name and old.depth == st.depth:
                old.seconds += st.seconds
                old.cpu_seconds += st.cpu_seconds
                old.peak_rss = max(old.peak_rss, st.peak_rss)
                old.calls += 1
                if st.rows is not None:
                    old.rows = (old.rows or 0) + st.rows
                return
        self.stages.append(st)

    def wrap(self, owner, attr: str, name=None, rows=None, depth: int | None = None):
        """Replace ``owner.attr`` with a timed wrapper named ``name`` (or ``name(args, kwargs)``);
        ``rows(args, kwargs, result)`` counts rows; ``depth`` for a function that runs in a thread
        of its own (``stage``)."""
        original = getattr(owner, attr)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            label = name(args, kwargs) if callable(name) else (name or attr)
            with self.stage(label, depth=depth) as h:
                result = original(*args, **kwargs)
                if rows is not None:
                    try:
                        h["rows"] = rows(args, kwargs, result)
                    except Exception:  # a count is a nicety, never a failure
                        h["rows"] = None
                return result

        self.patch(owner, attr, timed)
        return original

    def patch(self, owner, attr: str, value) -> None:
        """Set ``owner.attr`` (undone by ``restore``)."""
        self._patches.append((owner, attr, owner.__dict__.get(attr, getattr(owner, attr))))
        setattr(owner, attr, value)

    def restore(self) -> None:
        """Undo every ``patch`` and ``wrap``, newest first."""
        while self._patches:
            owner, attr, original = self._patches.pop()
            setattr(owner, attr, original)

    def as_dicts(self) -> list[dict]:
        return [asdict(s) for s in self.stages]


def machine() -> dict:
    """What the numbers were measured on."""
    import platform

    info: dict = {"python": platform.python_version(), "platform": platform.platform(terse=True),
                  "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if os.environ.get(var):
            info[var] = os.environ[var]
    import duckdb
    import polars
    import pyarrow

    info["versions"] = {"polars": polars.__version__, "duckdb": duckdb.__version__, "pyarrow": pyarrow.__version__}
    try:
        from importlib.metadata import version

        for pkg in ("pandas", "great-expectations", "prefect"):
            info["versions"][pkg] = version(pkg)
    except Exception:
        pass
    return info
