"""The run summary prints what the files and checks said as text: brackets in a vendor's value, an
example list or an error are never taken for the terminal's markup (where ``[nan]`` vanished and
``[/x]`` raised instead of printing)."""

from __future__ import annotations

import io
from datetime import date

from rich.console import Console

from capspread.config import Home
from capspread.summary import print_summary
from expectations.runner import Check, Outcome
from flows.nightly import DatasetReport, RunResult

# texts as the pipeline writes them, with brackets a markup parser would take for tags
WARNING = "column values to not be null on 'symbol': 3 unexpected, e.g. [nan, nan, nan]"
ERROR = "holdings.csv, row 4, field 'Ticker': found '[/b]'; expected a ticker"
NOTE = "inbox/prices is stale: newest observation [red] 2026-08-21"
MESSAGE = "finished [bold]with[/bold] a note"
INBOX = "inbox/price/[draft] SPY.csv is not in a dataset's folder and was left where it is"


def test_the_summary_prints_brackets_as_they_are(tmp_path):
    home = Home(tmp_path / "home [x]").ensure()
    check = Check("expect_column_values_to_be_between", "weight", "warn", False, 10, 1, ["[/i]"])
    result = RunResult(
        run_id="r", as_of=date(2026, 11, 24), profile="sample", status="quarantined", message=MESSAGE,
        datasets={"holdings": DatasetReport("holdings", warnings=[WARNING], errors=[ERROR])},
        mart_outcomes=[Outcome("size_spread_daily", [check])], health_notes=[NOTE], inbox_notes=[INBOX],
        docs_index=str(home.root / "docs" / "index.html"), published=True,
        quarantine_files=[str(home.quarantine / "r")],
    )
    out = io.StringIO()
    print_summary(result, home, Console(file=out, width=400, color_system=None))
    text = out.getvalue()
    for said in (WARNING, ERROR, NOTE, MESSAGE, f"inbox {INBOX}", check.describe(), result.docs_index, str(home.snapshot),
                 str(home.published / "parquet"), str(home.quarantine)):
        assert said in text, said
    assert "e.g. ['[/i]']" in text


def test_a_failed_run_prints_its_error_as_it_is(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import flows.nightly
    from capspread.cli import app

    def fails(**kwargs):
        raise RuntimeError("bad cell [/b] in [nan]")

    monkeypatch.setattr(flows.nightly, "nightly", fails)
    res = CliRunner().invoke(app, ["run"], env={"CAPSPREAD_HOME": str(tmp_path / "home"), "COLUMNS": "200"})
    assert res.exit_code == 1, res.output
    assert "capspread run failed: RuntimeError: bad cell [/b] in [nan]" in res.output
