"""Landing, quarantine and the inbox: files on disk under CAPSPREAD_HOME."""

from __future__ import annotations

import json
import os
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from capspread.config import Home
from sources.base import Batch
from sources.errors import BadInput
from sources.schemas import DATASETS


def landing_target(home: Home, batch: Batch) -> Path:
    """Where ``land`` stores ``batch``: ``landing/<source>/<dataset>/<sha256>.<ext>``."""
    return home.landing / batch.source / batch.dataset / f"{batch.sha256}.{batch.extension}"


def write_landed(target: Path, payload: bytes) -> Path:
    """Store ``payload`` at ``target`` unless a file is there already (a landed file is never
    rewritten): written beside it, renamed into place, made read-only."""
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(payload)
        os.replace(tmp, target)
        os.chmod(target, 0o444)
    return target


def land(home: Home, batch: Batch) -> Path:
    """Store the payload once under ``landing/<source>/<dataset>/<sha256>.<ext>`` (never rewritten)."""
    return write_landed(landing_target(home, batch), batch.payload)


def quarantine(home: Home, run_id: str, batch: Batch, reasons: list[str]) -> Path:
    """Move a rejected batch to ``quarantine/<run_id>/<dataset>/`` with a readable reason file.

    The payload keeps its (sanitised) name; a second file of the same name in the same run gets
    ``-2``, ``-3`` … before its extension instead of overwriting the first. The reason file
    ``<name>.reason.txt`` names the file, the row or cell, what was found and what was expected.
    """
    folder = home.quarantine / run_id / batch.dataset
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._^-]+", "_", batch.name).strip(".") or "payload"
    target = folder / safe
    n = 1
    while target.exists() or target.with_name(f"{target.name}.reason.txt").exists():
        n += 1
        stem, dot, ext = safe.rpartition(".")
        target = folder / (f"{stem}-{n}.{ext}" if dot and stem else f"{safe}-{n}")
    target.write_bytes(batch.payload)
    reason = target.with_name(f"{target.name}.reason.txt")
    lines = [
        f"file: {batch.inbox_path or batch.name}",
        f"source: {batch.source}",
        f"dataset: {batch.dataset}",
        f"format: {batch.format}",
        f"sha256: {batch.sha256}",
        f"size_bytes: {len(batch.payload)}",
        f"run: {run_id}",
        f"quarantined_at: {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
        "",
        "why:",
        *[f"- {r}" for r in reasons],
    ]
    error = batch.error
    if isinstance(error, BadInput):
        lines += ["", "where:"]
        if error.row is not None:
            lines.append(f"  row: {error.row}")
        if error.field is not None:
            lines.append(f"  field: {error.field}")
        if error.found is not None:
            lines.append(f"  found: {error.found!r}")
        if error.expected is not None:
            lines.append(f"  expected: {error.expected}")
    lines += ["", "Fix the file and drop it into the inbox again; nothing of it was loaded."]
    reason.write_text("\n".join(lines) + "\n")
    if batch.inbox_path:
        Path(batch.inbox_path).unlink(missing_ok=True)
    return target


HIDDEN = (".", "~$")  # hidden files and a spreadsheet's lock files (``~$book.xlsx``)


def _skipped(path: Path) -> bool:
    """Hidden files and a spreadsheet's lock files are not inbox files."""
    return path.name.startswith(HIDDEN) or not path.is_file()


def _detect(formats, payload: bytes, name: str, dataset: str) -> tuple[str, str]:
    """(dataset, format) by content. A two-column FRED CSV of a series not known as an index
    (``observation_date,WILL5000IND``) reads as CPI by default; dropped in ``inbox/prices/`` it is
    taken as the price series the folder says it is."""
    try:
        found, fmt = formats.detect(payload, name)
    except BadInput as first:
        try:  # the same refusal, with the formats of the folder's dataset as what was expected
            formats.detect(payload, name, dataset)
        except BadInput as exc:
            raise exc from None
        raise first
    if found != dataset and fmt == "fred_csv" and dataset == "prices":
        found, fmt = formats.detect(payload, name, dataset)
    return found, fmt


def _first_line(payload: bytes, name: str) -> str:
    from sources.formats._common import lines_of

    try:
        return next((line for line in lines_of(payload[:65536], name) if line.strip()), "")
    except BadInput:
        return ""


def _unrecognised(exc: BadInput, payload: bytes, name: str) -> BadInput:
    """A file no format recognises: say so when its header is split by another delimiter."""
    header = _first_line(payload, name)
    for sep, what in ((";", "semicolons"), ("\t", "tabs")):
        if sep in header and "," not in header and "|" not in header:
            return BadInput(exc.file, f"{exc.message}: the header is separated by {what} ({sep!r}), not commas",
                            row=exc.row, field=exc.field, found=exc.found,
                            expected="comma-separated fields (FINRA files: '|'): " + (exc.expected or ""))
    return exc


def _no_rows(payload: bytes, name: str) -> BadInput:
    """A file that parsed to nothing: a header without data rows (or rows with empty values only)."""
    from sources.formats._common import lines_of

    text_like = payload.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] not in (b"{", b"[") and payload[:4] != b"PK\x03\x04"
    numbered = [(i + 1, line) for i, line in enumerate(lines_of(payload, name)) if line.strip()] if text_like else []
    if not numbered:
        return BadInput(name, "the file holds no observations", expected="at least one observation")
    row, last = numbered[-1]
    return BadInput(name, "no data rows: nothing under the header but empty values" if len(numbered) > 1
                    else "no data rows: the file holds only its header",
                    row=row, found=last[:120], expected="at least one data row under the header")


def stray_inbox_files(home: Home) -> list[str]:
    """Files in the inbox that no run reads: outside a ``inbox/<dataset>/`` folder (at the top, or in
    a folder named after no dataset, such as ``inbox/price/``), as paths from the home's root.
    They are left where they are; the run says so."""
    if not home.inbox.is_dir():
        return []
    found = []
    for path in sorted(home.inbox.rglob("*")):
        rel = path.relative_to(home.inbox)
        if path.is_file() and not any(part.startswith(HIDDEN) for part in rel.parts) \
                and not (len(rel.parts) == 2 and rel.parts[0] in DATASETS):
            found.append(str(path.relative_to(home.root)))
    return found


def scan_inbox(home: Home, today: date | None = None) -> list[Batch]:
    """Every file in ``inbox/<dataset>/``, parsed by content; unparseable files carry their error.

    A file is refused (``batch.error``) when its content is another dataset's, when it cannot be
    parsed, when it holds no data rows, or when an observation is dated after the day the run
    happens (``today``, UTC, plus one day for time zones): nothing can come from the future.
    """
    from sources import formats
    from sources.formats._common import dates_not_after

    limit = (today or datetime.now(timezone.utc).date()) + timedelta(days=1)
    batches: list[Batch] = []
    for dataset in DATASETS:
        folder = home.inbox / dataset
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.iterdir() if not _skipped(p)):
            payload = path.read_bytes()
            batch = Batch(source="inbox", dataset=dataset, name=path.name, payload=payload, format="unknown",
                          inbox_path=str(path))
            try:
                with dates_not_after(limit):
                    try:
                        found, fmt = _detect(formats, payload, path.name, dataset)
                    except BadInput as exc:
                        raise _unrecognised(exc, payload, path.name) from None
                    batch.format = fmt
                    if found != dataset:
                        raise BadInput(path.name, f"content is a {found} file ({fmt}) but it was dropped in "
                                       f"inbox/{dataset}/", expected=f"a {dataset} format, or move it to inbox/{found}/")
                    frame = formats.parse(payload, path.name, dataset)
                if frame.is_empty():
                    raise _no_rows(payload, path.name)
                batch.frame = frame
            except BadInput as exc:
                if not exc.file.startswith(path.name):  # the reason must name the file (``x.zip!member`` does)
                    exc = BadInput(path.name, f"{exc.file}: {exc.message}", row=exc.row, field=exc.field,
                                   found=exc.found, expected=exc.expected)
                batch.error = exc
            batches.append(batch)
    return batches


JOURNAL = "_runs"


def write_journal(home: Home, run_id: str, as_of: date, known_at: datetime, started: datetime, profile: str,
                  entries: list[dict]) -> Path:
    """Record which landing files a run loaded, with its as-of date and known_at stamp, under
    ``landing/_runs/`` (written once, never edited): replay repeats the runs from these alone."""
    folder = home.landing / JOURNAL
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{started.strftime('%Y%m%dT%H%M%S%fZ')}_{run_id}.json"
    body = {"run_id": run_id, "as_of": as_of.isoformat(), "known_at": known_at.isoformat(),
            "started": started.isoformat(), "profile": profile, "entries": entries}
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(body, indent=1) + "\n")
    os.replace(tmp, target)
    return target


def read_journals(home: Home) -> list[dict]:
    """Every run journal under ``landing/_runs/``, oldest first."""
    folder = home.landing / JOURNAL
    if not folder.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
