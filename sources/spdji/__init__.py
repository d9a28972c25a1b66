"""S&P Dow Jones Indices ``sp-500-eps-est.xlsx``: index-level P/E, growth and EPS estimates.

Dataset ``estimates`` only. One request::

    GET {CAPSPREAD_SPDJI_BASE_URL or https://www.spglobal.com}
        /spdji/en/documents/additional-material/sp-500-eps-est.xlsx

The workbook is landed as received (named ``sp-500-eps-est_<as-of>.xlsx``) and parsed by labels
(``sources.formats.estimates``); every edition is a snapshot dated by its own edition date.

The end of the source
---------------------
S&P DJI discontinued this public file on 2026-01-31; its final edition says so in its first rows.
The source never lets the last numbers pass for current ones: the batch carries a note starting
with ``source-ended: `` (see ``sources.consensus.state``) when

* the first rows of the first sheet carry a discontinuation notice (``edition_notice`` of
  ``sources.formats.estimates``, or wording such as "no longer be published", "final edition");
* the file has not changed (same SHA-256 as the edition seen before) for ``ended_days`` (default
  60, ``CAPSPREAD_SPDJI_ENDED_DAYS``) days or more — after ``stale_days`` (default 21,
  ``CAPSPREAD_SPDJI_STALE_DAYS``) the note starts with ``source-stale: `` instead. The first time a
  file is seen its ``Last-Modified`` date (when sent) counts as the day it last changed;
* the file is no longer served (HTTP 404 or 410): the last edition kept in the state folder is handed
  over again (the warehouse skips it as already landed) so that the note reaches the run; without a
  kept edition the refusal is quarantined with the same note.

The edition's numbers still load with their own edition date: they are true history, just not
today's. State (hash, the day the file last changed, the last edition itself) lives in the source's
state folder; it only moves forward, so a run for a past date does not disturb it.
"""

from __future__ import annotations

import email.utils
import hashlib
import io
import logging
import os
import re
import zipfile
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from xml.etree import ElementTree

from sources.base import Batch
from sources.consensus.state import ENDED, STALE, StateFile, write_atomic
from sources.http import HttpClient, HttpRefused, Unit, error_batch, looks_like_html, parsed_batch, settle

log = logging.getLogger("capspread.sources")

DEFAULT_BASE_URL = "https://www.spglobal.com"
PATH = "/spdji/en/documents/additional-material/sp-500-eps-est.xlsx"
FILE = "sp-500-eps-est.xlsx"
DATASET = "estimates"
DEFAULT_STALE_DAYS = 21
DEFAULT_ENDED_DAYS = 60
_WORDING = re.compile(
    r"discontinu|no longer (be )?(published|updated|available|produced|maintained)|final (edition|report|update)"
    r"|(will )?ceas(e|ed|ing) (publication|to be published|publishing)|last (edition|report) of",
    re.IGNORECASE,
)


def _top_strings(data: bytes, max_row: int) -> list[str] | None:
    """The texts of the cells in the first ``max_row`` rows of the workbook's first sheet, read from
    the xlsx parts directly (fast: the ordinary edition is not opened twice to find nothing);
    None when ``data`` is not a readable workbook."""
    try:
        with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
            book = zf.read("xl/workbook.xml").decode("utf-8", "replace")
            first = re.search(r'<(?:\w+:)?sheet\b[^>]*\b(?:\w+:)?id="([^"]+)"', book)
            rels = zf.read("xl/_rels/workbook.xml.rels").decode("utf-8", "replace")
            target = None
            if first:
                for rel in re.findall(r"<Relationship\b[^>]*>", rels):
                    if f'Id="{first.group(1)}"' in rel:
                        target = re.search(r'Target="([^"]+)"', rel).group(1)
            if target is None:
                return None
            path = target.lstrip("/") if target.startswith("/") else "xl/" + target
            shared: list[str] = []
            if "xl/sharedStrings.xml" in zf.namelist():
                root = ElementTree.fromstring(zf.read("xl/sharedStrings.xml"))
                shared = ["".join(t.text or "" for t in si.iter() if t.tag.endswith("}t")) for si in root]
            out: list[str] = []
            for _, elem in ElementTree.iterparse(io.BytesIO(zf.read(path)), events=("end",)):
                if not elem.tag.endswith("}row"):
                    continue
                if int(elem.get("r") or 0) > max_row:
                    break
                for cell in elem:
                    kind = cell.get("t")
                    value = next((v.text for v in cell if v.tag.endswith("}v")), None)
                    if kind == "s" and value is not None and value.isdigit() and int(value) < len(shared):
                        out.append(shared[int(value)])
                    elif kind == "inlineStr":
                        out.append("".join(t.text or "" for t in cell.iter() if t.tag.endswith("}t")))
                    elif kind == "str" and value:
                        out.append(value)
                elem.clear()
            return out
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, ElementTree.ParseError, AttributeError):
        return None


def discontinuation_notice(data: bytes, max_row: int = 15) -> str | None:
    """The text of a cell in the first ``max_row`` rows of the first sheet announcing the end of
    the report — one mentioning a discontinuation (what ``edition_notice`` of
    ``sources.formats.estimates`` finds) or with wording such as "no longer be published" or
    "final edition" — else None (also for anything that is not a workbook)."""
    texts = _top_strings(data, max_row)
    if texts is None:
        from sources.formats.estimates import edition_notice

        return edition_notice(data)  # a workbook these parts cannot be read from: the slow way
    for text in texts:
        if _WORDING.search(text):
            return " ".join(text.split())
    return None


def _days_setting(value: int | None, env: str, default: int) -> int:
    if value is not None:
        return value
    raw = os.environ.get(env, "").strip()
    return int(raw) if raw else default


def _http_date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).date()
    except (TypeError, ValueError):
        return None


class SpdjiSource:
    """The S&P DJI EPS-estimates workbook (see the module docstring)."""

    name = "spdji"

    def __init__(
        self,
        *,
        stale_days: int | None = None,
        ended_days: int | None = None,
        state_dir: Path | None = None,
        lags: Mapping[str, int] | None = None,
        client: HttpClient | None = None,
        **client_options,
    ) -> None:
        self.stale_days = _days_setting(stale_days, "CAPSPREAD_SPDJI_STALE_DAYS", DEFAULT_STALE_DAYS)
        self.ended_days = _days_setting(ended_days, "CAPSPREAD_SPDJI_ENDED_DAYS", DEFAULT_ENDED_DAYS)
        self.state_dir = state_dir
        self.state = StateFile(state_dir / "state.json" if state_dir is not None else None)
        self._kept: bytes | None = None  # the last edition, when no state folder is configured
        self.lags = dict(lags or {})
        client_options.setdefault("default_min_interval", 1.0)
        self.client = client or HttpClient(self.name, DEFAULT_BASE_URL, **client_options)

    def fetch(self, dataset: str, as_of: date, cursor: date | None) -> list[Batch]:
        """The current edition with its health notes; [] for other datasets."""
        if dataset != DATASET:
            return []
        state = self.state.load()
        with self.client.session():
            batch = self._edition(as_of, state)
        self.state.save(state)
        return settle([Unit([batch])], as_of)

    # -- one edition

    def _edition(self, as_of: date, state: dict) -> Batch:
        name = f"sp-500-eps-est_{as_of.isoformat()}.xlsx"
        try:
            response = self.client.get(PATH)
        except HttpRefused as exc:
            if exc.status not in (404, 410):
                return error_batch(self.name, DATASET, name, exc.body, exc)
            note = f"{ENDED}S&P DJI no longer serves {FILE} (HTTP {exc.status})"
            if state.get("sha256"):
                note += f"; the last edition seen changed on {state.get('changed_on')}"
            kept = self._kept_edition()
            if kept is None:
                return error_batch(self.name, DATASET, name, exc.body, exc, notes=[note])
            batch = parsed_batch(self.name, DATASET, state.get("name") or name, kept, as_of=as_of, lags=self.lags)
            batch.notes.append(note + "; that edition is handed over again so that this is seen, not re-loaded")
            return batch
        payload = response.content
        batch = parsed_batch(self.name, DATASET, name, payload, as_of=as_of, lags=self.lags)
        if looks_like_html(payload):
            return batch  # an error or consent page: quarantined, says nothing about the edition
        notice = discontinuation_notice(payload)
        if notice:
            batch.notes.append(f"{ENDED}the edition announces the end of the report: {notice!r}")
        self._track(batch, payload, notice, _http_date(response.headers.get("last-modified")), as_of, state)
        return batch

    def _track(self, batch: Batch, payload: bytes, notice: str | None, modified: date | None, as_of: date,
               state: dict) -> None:
        """Compare with the edition seen before; remember this one (state only moves forward)."""
        checked = state.get("checked_on")
        if checked and date.fromisoformat(checked) > as_of:
            return  # a run for a past date: the state is about a later day
        sha = hashlib.sha256(payload).hexdigest()
        if state.get("sha256") == sha:
            since = date.fromisoformat(state["changed_on"])
        else:
            since = min(modified, as_of) if modified else as_of
            if batch.error is None:
                state.update(sha256=sha, changed_on=since.isoformat(), name=batch.name, notice=notice)
                self._keep(payload)
        state["checked_on"] = as_of.isoformat()
        if batch.error is not None:
            return
        days = (as_of - since).days
        if notice:
            return  # already said, in the publisher's words
        if days >= self.ended_days:
            batch.notes.append(f"{ENDED}{FILE} has not changed since {since} ({days} days; "
                               f"{self.ended_days} without a change mean the publisher stopped it)")
        elif days >= self.stale_days:
            batch.notes.append(f"{STALE}{FILE} has not changed since {since} ({days} days)")
        elif days > 0:
            batch.notes.append(f"{FILE} unchanged since {since}")

    def _keep(self, payload: bytes) -> None:
        self._kept = payload
        if self.state_dir is not None:
            write_atomic(self.state_dir / "last-edition.xlsx", payload)

    def _kept_edition(self) -> bytes | None:
        if self.state_dir is not None:
            path = self.state_dir / "last-edition.xlsx"
            if path.exists():
                return path.read_bytes()
        return self._kept


__all__ = ["DEFAULT_BASE_URL", "FILE", "PATH", "SpdjiSource", "discontinuation_notice"]
