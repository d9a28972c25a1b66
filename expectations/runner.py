"""Runs a suite on a batch and reports in plain rows.

Two engines evaluate the same GX suites:

* ``gx`` — Great Expectations' pandas engine (``batch.validate``);
* ``setbased`` — every expectation as a Polars expression, one aggregate per suite
  (``expectations/setbased.py``), with a GX result built for Data Docs.

``CAPSPREAD_VALIDATION_ENGINE`` picks one: ``auto`` (the default) uses GX's engine for landing batches
up to ``CAPSPREAD_GX_MAX_ROWS`` rows (default 60,000: every batch of a nightly run and of the sample
but its French factor history) and the set-based engine above that (backfills, full-history files),
where GX's engine costs seconds per million rows and a fifth of a second per suite; mart suites,
which every run evaluates again on marts it rebuilds, run set-based. Both give the same checks
(tested on the real sample batches and the marts of a sample run).
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache

import polars as pl

from expectations.landing import SUITES

log = logging.getLogger(__name__)


@dataclass
class Check:
    expectation: str
    column: str | None
    severity: str  # "error" | "warn"
    success: bool
    element_count: int | None
    unexpected_count: int | None
    examples: list = field(default_factory=list)

    def describe(self) -> str:
        what = self.expectation.replace("expect_", "").replace("_", " ")
        col = f" on {self.column!r}" if self.column else ""
        found = f": {self.unexpected_count} unexpected" if self.unexpected_count else ""
        ex = f", e.g. {self.examples[:3]}" if self.examples else ""
        return f"{what}{col}{found}{ex}"


def plain_examples(values: list) -> list:
    """Examples of unexpected values as a message should show them, alike from both engines: a
    missing value (pandas' NaN, NaT or NA) as None, a timestamp at midnight without a time zone (a
    date column that went through pandas) as its ISO date, other dates and times in ISO form,
    durations as Python prints them, NumPy values as Python ones; each distinct example once, in the
    order found. One difference stays: a whole-number column with a missing value reaches GX's
    engine as floats (pandas), so GX shows ``5.0`` where the set-based engine shows ``5``."""
    import numpy as np

    def plain(v):
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, np.ndarray):  # a list-typed cell, as pandas holds it
            return [plain(x) for x in v.tolist()]
        if isinstance(v, np.datetime64):  # GX's column-pair checks pass raw NumPy values
            import pandas as pd

            return plain(pd.Timestamp(v))
        if isinstance(v, np.generic):  # a NumPy scalar (float64 is a float, but bool_ and int64 are not)
            return plain(v.item())
        if v is None or isinstance(v, (bool, int, str)):
            return v
        if isinstance(v, float):
            return None if math.isnan(v) else float(v)
        if type(v).__name__ in ("NaTType", "NAType"):  # pandas' missing values (NaT is a datetime)
            return None
        if isinstance(v, datetime):  # pandas' Timestamp too
            if v.tzinfo is None and v.time() == time(0) and not getattr(v, "nanosecond", 0):
                return v.date().isoformat()
            return v.isoformat()
        if isinstance(v, date):
            return v.isoformat()
        if isinstance(v, timedelta):  # pandas' Timedelta prints as '0 days 00:00:01'
            return str(timedelta(days=v.days, seconds=v.seconds, microseconds=v.microseconds))
        return str(v)

    seen, out = set(), []
    for v in values:
        v = plain(v)
        key = json.dumps(v, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


@dataclass
class Outcome:
    dataset: str
    checks: list[Check]
    suite: object = None  # the gx.ExpectationSuite that ran
    result: object = None  # the GX ExpectationSuiteValidationResult (for Data Docs)

    @property
    def errors(self) -> list[Check]:
        return [c for c in self.checks if not c.success and c.severity == "error"]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if not c.success and c.severity == "warn"]

    @property
    def passed(self) -> bool:
        return not self.errors


@lru_cache(maxsize=1)
def _context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.WARNING)
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


def validate(dataset: str, frame: pl.DataFrame, as_of: date, **options: object) -> Outcome:
    """Validate ``frame`` (a dataset in its source schema) with the dataset's landing suite."""
    _context()
    suite, derived = SUITES[dataset](frame, as_of, **options)
    return run_suite(dataset, suite, derived)


def validate_mart(mart: str, frame: pl.DataFrame, **options: object) -> Outcome:
    """Validate a mart frame with its business-rule suite (``expectations/marts.py``)."""
    from expectations.marts import suite as mart_suite

    _context()
    suite, derived = mart_suite(mart, frame, **options)
    forced = os.environ.get("CAPSPREAD_VALIDATION_ENGINE", "auto").strip().lower() or "auto"
    return run_suite(f"marts.{mart}", suite, derived, engine="setbased" if forced == "auto" else None)


ENGINES = ("auto", "gx", "setbased")
DEFAULT_GX_MAX_ROWS = 60_000


def engine_for(rows: int) -> str:
    """The engine ``run_suite`` uses for a frame of ``rows`` rows."""
    engine = os.environ.get("CAPSPREAD_VALIDATION_ENGINE", "auto").strip().lower() or "auto"
    if engine not in ENGINES:
        raise ValueError(f"CAPSPREAD_VALIDATION_ENGINE={engine!r}; expected one of {', '.join(ENGINES)}")
    if engine != "auto":
        return engine
    raw = os.environ.get("CAPSPREAD_GX_MAX_ROWS", "").strip()
    try:
        limit = int(raw) if raw else DEFAULT_GX_MAX_ROWS
    except ValueError as exc:
        raise ValueError(f"CAPSPREAD_GX_MAX_ROWS={raw!r} is not a whole number of rows") from exc
    return "gx" if rows <= limit else "setbased"


def run_suite(name: str, suite, derived: pl.DataFrame, engine: str | None = None) -> Outcome:
    """Run ``suite`` on ``derived`` and report plain rows (engine: see the module docstring)."""
    engine = engine or engine_for(derived.height)
    if engine == "setbased":
        from expectations import setbased

        try:
            found = setbased.checks(suite, derived)
        except setbased.Unsupported as exc:
            log.info("suite %s: set-based engine does not cover it (%s); using GX's engine", name, exc)
        else:
            result = setbased.gx_result(suite, found, derived.columns)
            return Outcome(dataset=name, checks=found, suite=suite, result=result)
    return gx_suite(name, suite, derived)


def gx_suite(name: str, suite, derived: pl.DataFrame) -> Outcome:
    """Run ``suite`` on ``derived`` with GX's pandas engine and report plain rows."""
    from expectations.setbased import column_label, severity_of

    ctx = _context()
    source_name = f"{name}_{id(derived)}"
    source = ctx.data_sources.add_or_update_pandas(source_name)
    asset = source.add_dataframe_asset(name=name)
    batch_def = asset.add_batch_definition_whole_dataframe("batch")
    pdf = derived.to_pandas()  # numpy-backed: the fastest pandas for GX
    batch = batch_def.get_batch(batch_parameters={"dataframe": pdf})
    result = batch.validate(suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5})
    ctx.data_sources.delete(source_name)
    checks = []
    for r in result.results:
        cfg = r.expectation_config
        column = column_label(cfg.kwargs)
        res = r.result or {}
        raised = (r.exception_info or {}).get("raised_exception")
        examples = res.get("partial_unexpected_list") or []
        if raised:
            examples = [str((r.exception_info or {}).get("exception_message"))[:300]]
        checks.append(
            Check(
                expectation=cfg.type,
                column=column,
                severity=severity_of(cfg),
                success=bool(r.success),
                element_count=res.get("element_count"),
                unexpected_count=res.get("unexpected_count"),
                examples=plain_examples(examples),
            )
        )
    return Outcome(dataset=name, checks=checks, suite=suite, result=result)
