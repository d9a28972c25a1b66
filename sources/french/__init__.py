"""Kenneth R. French data library: the Fama-French three factors, monthly and daily.

Dataset ``factors`` only. Two zip files, each holding one CSV in the library's original layout
(preamble, the factor table, the annual block, the copyright line; ``sources.formats.factors``)::

    GET {CAPSPREAD_FRENCH_BASE_URL or https://mba.tuck.dartmouth.edu}/pages/faculty/ken.french/ftp/
        F-F_Research_Data_Factors_CSV.zip         (monthly)
        F-F_Research_Data_Factors_daily_CSV.zip   (daily)

Each zip is landed as received and holds the whole history; values are percent in the file and
fractions in the frame; rows not yet public on the as-of date (``[publication_lag]``
``factors_monthly_months`` / ``factors_daily_days``) are left out.

The library changes its files about once a month, so the source asks politely: it keeps each
file's ``ETag`` / ``Last-Modified`` in its state folder and sends ``If-None-Match`` /
``If-Modified-Since``; a ``304 Not Modified`` answer means nothing new (no batch). The validators
are used only once the warehouse has loaded that download (the dataset's cursor is on or after the
day it was fetched), so a download that was quarantined is fetched again in full next run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path

from sources.base import Batch
from sources.consensus.state import StateFile
from sources.http import HttpClient, HttpRefused, Unit, error_batch, parsed_batch, settle

DEFAULT_BASE_URL = "https://mba.tuck.dartmouth.edu"
FOLDER = "/pages/faculty/ken.french/ftp/"
FILES = {
    "monthly": "F-F_Research_Data_Factors_CSV.zip",
    "daily": "F-F_Research_Data_Factors_daily_CSV.zip",
}
DATASET = "factors"


class FrenchSource:
    """Fama-French factors from the French data library (see the module docstring)."""

    name = "french"

    def __init__(
        self,
        frequencies: Iterable[str] = ("monthly", "daily"),
        *,
        state_dir: Path | None = None,
        lags: Mapping[str, int] | None = None,
        client: HttpClient | None = None,
        **client_options,
    ) -> None:
        self.frequencies = list(dict.fromkeys(frequencies))
        unknown = sorted(set(self.frequencies) - set(FILES))
        if unknown:
            raise ValueError(f"french: unknown frequencies {unknown}; known: {', '.join(FILES)}")
        self.state = StateFile(state_dir / "validators.json" if state_dir is not None else None)
        self.lags = dict(lags or {})
        client_options.setdefault("default_min_interval", 1.0)
        self.client = client or HttpClient(self.name, DEFAULT_BASE_URL, **client_options)

    def fetch(self, dataset: str, as_of: date, cursor: date | None) -> list[Batch]:
        """Both files when they changed since the last loaded download; [] for other datasets."""
        if dataset != DATASET or not self.frequencies:
            return []
        state = self.state.load()
        units = []
        with self.client.session():
            for frequency in self.frequencies:
                batch = self._file(FILES[frequency], as_of, cursor, state)
                if batch is not None:
                    units.append(Unit([batch]))
        self.state.save(state)
        return settle(units, as_of)

    def _file(self, file: str, as_of: date, cursor: date | None, state: dict) -> Batch | None:
        held = state.get(file) or {}
        headers = {}
        fetched = held.get("fetched_on")
        if fetched and cursor is not None and cursor >= date.fromisoformat(fetched):
            if held.get("etag"):
                headers["If-None-Match"] = held["etag"]
            if held.get("last_modified"):
                headers["If-Modified-Since"] = held["last_modified"]
        try:
            response = self.client.get(FOLDER + file, headers=headers)
        except HttpRefused as exc:
            if exc.status == 304:
                return None  # not modified since the download the warehouse holds
            return error_batch(self.name, DATASET, file, exc.body, exc)
        batch = parsed_batch(self.name, DATASET, file, response.content, as_of=as_of, lags=self.lags)
        if batch.error is None:
            state[file] = {"fetched_on": as_of.isoformat(), "etag": response.headers.get("etag"),
                           "last_modified": response.headers.get("last-modified")}
        return batch


__all__ = ["DEFAULT_BASE_URL", "FILES", "FrenchSource"]
