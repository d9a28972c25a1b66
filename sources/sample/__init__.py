"""The embedded real-data sample, served like a live source (the "recorded client").

The Parquet files in ``sources/sample/data/`` are compact extracts of real public data (see
NOTICE; rebuilt by ``python -m sources.sample.build``). A fetch returns only the observations
that had become public by the as-of date (``transforms.pit.available_on``) and, incrementally,
only those after the source's cursor, so ``capspread run --as-of 2025-06-11`` never sees an
observation dated after 2025-06-11.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import polars as pl

from sources.base import Batch
from sources.schemas import DATASETS, KEYS, conform
from transforms.pit import available_on

DATA = Path(__file__).resolve().parent / "data"


class SampleSource:
    name = "sample"

    def __init__(self, data_dir: Path = DATA, lags: Mapping[str, int] | None = None) -> None:
        self.data_dir = data_dir
        self.lags = dict(lags or {})

    def datasets(self) -> list[str]:
        return [d for d in DATASETS if (self.data_dir / f"{d}.parquet").exists()]

    def fetch(self, dataset: str, as_of: date, cursor: date | None) -> list[Batch]:
        path = self.data_dir / f"{dataset}.parquet"
        if not path.exists():
            return []
        avail = available_on(dataset, self.lags)
        window = avail <= as_of
        if cursor is not None:
            window = window & (avail > cursor)
        frame = (
            pl.scan_parquet(path)
            .filter(window)
            .sort(list(KEYS[dataset]), nulls_last=True)
            .collect()
        )
        if frame.is_empty():
            return []
        frame = conform(dataset, frame)
        buf = io.BytesIO()
        frame.write_parquet(buf, compression="zstd")
        since = cursor.isoformat() if cursor else "start"
        return [
            Batch(
                source=self.name,
                dataset=dataset,
                name=f"{dataset}_{since}_{as_of.isoformat()}.parquet",
                payload=buf.getvalue(),
                format="parquet",
                frame=frame,
                cursor=as_of,
            )
        ]
