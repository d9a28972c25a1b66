"""Every example query in docs/analysts.md runs against the published snapshot."""

from __future__ import annotations

import re
from datetime import date

import pytest
from conftest import REPO
from real_closes import closes

from warehouse.query import run_query

QUERIES = re.findall(r"```sql\n(.*?)```", (REPO / "docs" / "analysts.md").read_text(), flags=re.S)


def test_the_guide_has_one_query_per_mart():
    marts = {m for q in QUERIES for m in re.findall(r"marts\.(\w+)", q)}
    assert marts == {"market_scoreboard", "index_weekly", "size_spread_daily", "size_spread_monthly",
                     "short_interest_by_bucket", "etf_short_interest", "inflation_monthly", "earnings_outlook",
                     "factor_monthly", "rate_backdrop"}


@pytest.mark.parametrize("query", QUERIES, ids=[re.search(r"from (\w+\.\w+)", q).group(1) for q in QUERIES])
def test_example_query_runs_on_the_published_snapshot(home_2025_06_11, query):
    home, _ = home_2025_06_11
    columns, rows = run_query(home / "published" / "capspread.duckdb", query)
    selected = re.search(r"select (.*?)\s+from", query, flags=re.S).group(1)
    assert len(columns) == len([c for c in selected.split(",") if c.strip()])
    if "rate_backdrop" in query:
        assert rows == []  # the sample has no rates data: the backdrop is empty, not an error
    if "market_scoreboard" in query:
        iwm = next(r for r in rows if r[1] == "IWM")
        c = closes("IWM")
        assert iwm[0] == date(2025, 6, 11)
        assert iwm[3] == c[date(2025, 6, 11)]
