"""Small persistent state for the polite live sources, kept as files beside the warehouse.

Used by ``consensus`` (rotation through the universe, the daily budget, bodies cached per name per
day), ``ishares`` (the latest good holdings file of each fund), ``spdji`` (the hash of the last
edition, to notice a file that stops changing) and ``french`` (HTTP validators for conditional
requests). Sources never touch the warehouse; this state is theirs alone and can be deleted at any
time (the next run starts a rotation afresh and downloads whole files again).

Where: ``CAPSPREAD_STATE_DIR`` when set, else ``<CAPSPREAD_HOME>/state`` (default ``./data/state``),
one folder per source.

Health notes: a source tells the flow about its own condition through ``Batch.notes`` entries that
start with one of these prefixes (the rest of the entry is the reason, in words):

* ``source-ended: `` — the publisher stopped the source (a discontinuation notice, a file that no
  longer changes or is no longer served); the numbers it delivered are its last, not current ones;
* ``source-stale: `` — the source answered but its data is missing or older than expected;
* ``source-partial: `` — the fetch stopped part way (a rate limit, an expired session); what came
  back is good, the rest is asked for again next run.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

ENDED = "source-ended: "
STALE = "source-stale: "
PARTIAL = "source-partial: "
STATE_ENV = "CAPSPREAD_STATE_DIR"


def default_state_dir(source: str) -> Path:
    """``$CAPSPREAD_STATE_DIR/<source>``, else ``<CAPSPREAD_HOME or ./data>/state/<source>``."""
    raw = os.environ.get(STATE_ENV, "").strip()
    if raw:
        return Path(raw) / source
    from capspread.config import Home

    return Home.from_env().root / "state" / source


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class StateFile:
    """A JSON object in a file (``path`` None: kept in memory only, for one process)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._memory: dict = {}

    def load(self) -> dict:
        if self.path is None:
            return json.loads(json.dumps(self._memory))
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            # a damaged state file costs one full rotation / download, never a failed run
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, data: dict) -> None:
        if self.path is None:
            self._memory = json.loads(json.dumps(data))
            return
        write_atomic(self.path, json.dumps(data, indent=1, sort_keys=True).encode("utf-8"))


__all__ = ["ENDED", "PARTIAL", "STALE", "STATE_ENV", "StateFile", "default_state_dir", "write_atomic"]
