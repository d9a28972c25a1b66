"""Landing, quarantine and the inbox: files on disk under CAPSPREAD_HOME."""

from __future__ import annotations

import json
import os
import re
from datetime import date, datetime, timezone
from pathlib import Path

from capspread.config import Home
from sources.base import Batch
from sources.errors import BadInput
from sources.schemas import DATASETS


def land(home: Home, batch: Batch) -> Path:
    """Store the payload once under ``landing/<source>/<dataset>/<sha256>.<ext>`` (never rewritten)."""
    target = home.landing / batch.source / batch.dataset / f"{batch.sha256}.{batch.extension}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(batch.payload)
        os.replace(tmp, target)
        os.chmod(target, 0o444)
    return target


def quarantine(home: Home, run_id: str, batch: Batch, reasons: list[str]) -> Path:
    """Move a rejected batch to ``quarantine/<run_id>/<dataset>/`` with a readable reason file."""
    folder = home.quarantine / run_id / batch.dataset
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._^-]+", "_", batch.name) or "payload"
    target = folder / safe
    target.write_bytes(batch.payload)
    reason = folder / f"{safe}.reason.txt"
    lines = [
        f"file: {batch.inbox_path or batch.name}",
        f"source: {batch.source}",
        f"dataset: {batch.dataset}",
        f"sha256: {batch.sha256}",
        f"run: {run_id}",
        f"quarantined_at: {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
        "",
        "why:",
        *[f"- {r}" for r in reasons],
        "",
        "Fix the file and drop it into the inbox again; nothing of it was loaded.",
    ]
    reason.write_text("\n".join(lines) + "\n")
    if batch.inbox_path:
        Path(batch.inbox_path).unlink(missing_ok=True)
    return target


def scan_inbox(home: Home) -> list[Batch]:
    """Every file in ``inbox/<dataset>/``, parsed by content; unparseable files carry their error."""
    from sources import formats

    batches: list[Batch] = []
    for dataset in DATASETS:
        folder = home.inbox / dataset
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
            payload = path.read_bytes()
            batch = Batch(source="inbox", dataset=dataset, name=path.name, payload=payload, format="unknown",
                          inbox_path=str(path))
            try:
                found, fmt = formats.detect(payload, path.name)
                batch.format = fmt
                if found != dataset:
                    raise BadInput(str(path), f"content is a {found} file ({fmt}) but it was dropped in inbox/{dataset}/",
                                   expected=f"a {dataset} format, or move it to inbox/{found}/")
                batch.frame = formats.parse(payload, path.name, dataset)
            except BadInput as exc:
                if not exc.file.endswith(path.name):
                    exc = BadInput(str(path), exc.reason())
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
