"""Usage errors of the command line are found before anything runs: exit 2, one message naming
the option, nothing written to the home."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from typer.testing import CliRunner

from capspread.cli import app


def _cli(home, *args):
    return CliRunner().invoke(app, list(args), env={"CAPSPREAD_HOME": str(home), "COLUMNS": "200"})


def test_a_run_as_of_a_day_it_cannot_be_run_on_is_a_usage_error(tmp_path):
    home = tmp_path / "home"
    tomorrow = max(date.today(), datetime.now(timezone.utc).date()) + timedelta(days=1)
    for day, said in ((tomorrow, "is in the future"),
                      (date(1989, 12, 29), "is before 1990-01-02, the first session of the XNYS calendar"),
                      ("2026-13-01", "is not a date; expected YYYY-MM-DD")):
        res = _cli(home, "run", "--as-of", str(day))
        assert res.exit_code == 2, res.output
        assert "--as-of" in res.output and said in " ".join(res.output.split()), res.output
    assert not (home / "warehouse.duckdb").exists()


def test_replay_of_an_unknown_dataset_is_a_usage_error(tmp_path):
    res = _cli(tmp_path / "home", "replay", "--dataset", "bogus")
    assert res.exit_code == 2, res.output
    assert "--dataset" in res.output and "unknown dataset 'bogus'" in res.output
    assert not (tmp_path / "home" / "warehouse.duckdb").exists()


def test_sql_without_a_snapshot_says_so_once(tmp_path):
    res = _cli(tmp_path / "home", "sql", "select 1")
    assert res.exit_code == 1
    assert "No published snapshot" in res.output and "query failed" not in res.output
