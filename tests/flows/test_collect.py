"""A source that stays unavailable is recorded and the others still deliver."""

from __future__ import annotations

from datetime import date

import flows.nightly as nightly
from capspread.config import Config, Home
from sources.errors import SourceUnavailable
from sources.sample import SampleSource


class Down:
    name = "down"

    def __init__(self):
        self.calls = 0

    def fetch(self, dataset, as_of, cursor):
        self.calls += 1
        raise SourceUnavailable(f"503 from the vendor for {dataset}")


def test_an_unavailable_source_does_not_stop_the_others(tmp_path, monkeypatch):
    down = Down()
    config = Config.load()
    monkeypatch.setattr(nightly, "_sources", lambda profile, cfg: [down, SampleSource(lags=cfg.publication_lag)])
    home = Home(tmp_path)
    home.ensure()
    run = nightly.RunResult(run_id="t", as_of=date(2025, 6, 11), profile="live")
    batches = nightly.collect.fn(home, config, "live", date(2025, 6, 11), {}, [], run)
    assert down.calls == 8
    assert [f[:2] for f in run.source_failures] == [("down", d) for d in
                                                     ("prices", "short_interest", "cpi", "estimates", "holdings", "factors",
                                                      "company_estimates", "rates")]
    assert {b.dataset for b in batches} == {"prices", "cpi", "short_interest", "factors"}
    assert all(b.source == "sample" for b in batches)
