"""What every source hands to the flow: batches of raw payload plus the parsed frame."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from functools import cached_property
from datetime import date
from typing import Protocol

import polars as pl

from sources.errors import BadInput


@dataclass
class Batch:
    """One payload exactly as received, with what it parsed to.

    ``frame`` is in the dataset's source schema (``sources/schemas.py``); ``error`` is set instead
    when the payload could not be parsed (the flow quarantines it). ``cursor`` is how far the
    source's incremental cursor may move once the batch has loaded.
    """

    source: str
    dataset: str
    name: str
    payload: bytes
    format: str
    frame: pl.DataFrame | None = None
    error: BadInput | None = None
    cursor: date | None = None
    inbox_path: str | None = None
    notes: list[str] = field(default_factory=list)
    # a file landed by an earlier run whose later rows became usable since (``landing_path`` set):
    # only rows public in (since, as_of] load; it is not landed or validated again
    landing_path: str | None = None
    since: date | None = None

    def release(self) -> None:
        """Drop the payload and the rows once the batch is landed (or quarantined) and loaded: a
        run then holds one batch's rows at a time in the load instead of all of them. The hash is
        kept."""
        _ = self.sha256
        self.payload, self.frame = b"", None

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.payload).hexdigest()

    @property
    def extension(self) -> str:
        return {"parquet": "parquet", "json": "json"}.get(self.format, self.name.rsplit(".", 1)[-1] if "." in self.name else "bin")


class Source(Protocol):
    name: str

    def fetch(self, dataset: str, as_of: date, cursor: date | None) -> list[Batch]:
        """Batches of ``dataset`` observations that became public in (cursor, as_of]."""
        ...


def parse_payload(payload: bytes, fmt: str, name: str, dataset: str) -> pl.DataFrame:
    """Parse a landed payload again (replay): Parquet written by the sample source, or any inbox
    or vendor format known to ``sources.formats``."""
    if fmt == "parquet":
        from sources.schemas import conform

        return conform(dataset, pl.read_parquet(io.BytesIO(payload)))
    from sources import formats

    return formats.parse(payload, name, dataset)
