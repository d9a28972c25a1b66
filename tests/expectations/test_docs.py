"""Data Docs: GX's own pages from real validation results, offline, with a bounded history."""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

from expectations.docs import (
    CDN_ASSETS,
    STATIC,
    VEGA_ASSETS,
    VEGA_BUNDLE,
    DocsRecord,
    build_data_docs,
    make_offline,
    offline_html,
)
from expectations.runner import validate
from sources.schemas import SCHEMAS

AS_OF = date(2025, 6, 11)
RUN_TIME = datetime(2025, 6, 11, 22, 5, tzinfo=timezone.utc)

_EXTERNAL = r"""\s*(?:https?:)?//"""
# resource references that a browser loads by itself: any src=/srcset=/data=/poster=, href= of any
# tag but <a>, CSS url() and @import (in pages, stylesheets and scripts alike)
_SRC = re.compile(r"""\b(?:src|srcset|data|poster)\s*=\s*\\?["']?""" + _EXTERNAL, re.I)
_TAG_HREF = re.compile(r"""<(?!a\b)([a-z]+)\b[^>]*\bhref\s*=\s*["']?""" + _EXTERNAL, re.I)
_CSS_URL = re.compile(r"""url\(\s*\\?["']?""" + _EXTERNAL, re.I)
_IMPORT = re.compile(r"""@import\s+(?:url\()?\s*["']?""" + _EXTERNAL, re.I)


def _prices() -> pl.DataFrame:
    """Two symbols over three sessions; IWM's close on 2025-06-10 is negative (an `error` expectation fails)."""
    days = [date(2025, 6, 9), date(2025, 6, 10), date(2025, 6, 11)]
    return pl.DataFrame(
        {
            "symbol": ["IWM"] * 3 + ["SPY"] * 3,
            "trade_date": days * 2,
            "open": [200.0, 201.0, 202.0, 600.0, 601.0, 602.0],
            "high": [201.0, 202.0, 203.0, 601.0, 602.0, 603.0],
            "low": [199.0, 200.0, 201.0, 599.0, 600.0, 601.0],
            "close": [200.5, -1.0, 202.5, 600.5, 601.5, 602.5],
            "adj_close": [None] * 6,
            "volume": [1e6] * 6,
        },
        schema=SCHEMAS["prices"],
    )


def _cpi() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "series_id": ["CPIAUCNS"] * 2,
            "ref_month": [date(2025, 3, 1), date(2025, 4, 1)],
            "value": [319.8, 320.8],
            "realtime_start": [date(2025, 4, 10), date(2025, 5, 13)],
        },
        schema=SCHEMAS["cpi"],
    )


@pytest.fixture(scope="module")
def outcomes():
    prices = validate("prices", _prices(), AS_OF)
    cpi = validate("cpi", _cpi(), AS_OF)
    assert not prices.passed and any(c.expectation == "expect_column_values_to_be_between" for c in prices.errors)
    assert cpi.passed
    return {"prices": prices, "cpi": cpi}


@pytest.fixture(scope="module")
def site(outcomes, tmp_path_factory):
    docs = tmp_path_factory.mktemp("docs")
    run_id = "20250611T220500Z-0a1b2c"
    records = [
        DocsRecord.from_outcome(run_id, RUN_TIME, f"landing/{name}/2025-06-11/{name}-sample.parquet", outcome)
        for name, outcome in outcomes.items()
    ]
    index = build_data_docs(docs, records)
    return docs, index, run_id


def _generated(docs: Path, *suffixes: str) -> list[Path]:
    return sorted(p for p in docs.rglob("*") if p.suffix in suffixes and ".gx" not in p.relative_to(docs).parts)


def _page(docs: Path, suite: str) -> Path:
    (page,) = (docs / "validations" / suite).rglob("*.html")
    return page


def _index_links(index: Path) -> set[str]:
    """The validation result pages the index table links to."""
    links = re.findall(r"'_table_row_link_path': '([^']+)'", index.read_text(encoding="utf-8"))
    return {link for link in links if link.startswith("validations/")}


def test_index_and_pages_are_written_from_gx_results(site):
    docs, index, run_id = site
    assert index == docs / "index.html" and index.is_file()
    text = index.read_text(encoding="utf-8")
    assert "ge-index-page-validation-results-table" in text  # GX's own site index
    links = _index_links(index)
    assert {link.split("/")[1] for link in links} == {"prices", "cpi"}
    assert all(run_id in link for link in links)
    for link in links:
        assert (docs / link).is_file(), link
    assert (docs / "expectations" / "prices.html").is_file() and (docs / "expectations" / "cpi.html").is_file()
    # the landing file names the batch
    assert _page(docs, "prices").name == "prices-sample.parquet.html"


def _column_sections(html: str) -> dict[str, str]:
    """The validation page's sections by their heading (a column name, or Overview ...)."""
    out = {}
    for part in re.split(r'<div id="section-\d+" class="ge-section', html)[1:]:
        m = re.search(r"<h5 class=\"m-0\" >\s*(.*?)\s*</h5>", part, re.S)
        if m:
            out[m.group(1)] = part
    return out


def test_failing_expectation_is_shown_failed_with_its_unexpected_value(site, outcomes):
    docs, _, _ = site
    html = _page(docs, "prices").read_text(encoding="utf-8")
    failed = sum(not c.success for c in outcomes["prices"].checks)  # the bad close and its moves (warn)
    assert re.search(rf"Unsuccessful Expectations</div></td><td[^>]*><div[^>]*>{failed}</div>", html)
    sections = _column_sections(html)
    close = sections["close"]
    assert "fa-times text-danger" in close and "values must be greater than" in close
    assert "1 unexpected values found" in close
    assert re.search(r">-1\.0</div>", close)  # the unexpected close is listed
    assert "fa-times" not in sections["open"] and "fa-check-circle text-success" in sections["open"]
    cpi = _page(docs, "cpi").read_text(encoding="utf-8")
    assert "fa-check-circle text-success" in cpi and "fa-times text-danger" not in cpi


def _external_references(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    found = []
    for pattern in (_SRC, _CSS_URL, _IMPORT) + ((_TAG_HREF,) if path.suffix == ".html" else ()):
        found += [text[m.start() : m.end() + 60] for m in pattern.finditer(text)]
    return found


def test_no_page_stylesheet_or_script_references_anything_outside(site):
    docs, _, _ = site
    files = _generated(docs, ".html", ".css", ".js")
    assert len([f for f in files if f.suffix == ".html"]) >= 5
    assert any(f.suffix == ".js" for f in files) and any(f.suffix == ".css" for f in files)
    bad = {str(f.relative_to(docs)): refs for f in files if (refs := _external_references(f))}
    assert not bad, bad
    context_id = (docs / ".gx" / "expectations" / ".ge_store_backend_id").read_text().split("=")[-1].strip()
    assert len(context_id) >= 32
    for f in files:
        text = f.read_text(encoding="utf-8", errors="replace")
        assert context_id not in text, f
        assert "great-expectations-web-assets" not in text and "dataContextId" not in text, f
        assert "newsletter" not in text, f


def test_scanner_flags_the_stock_references(tmp_path):
    """The check above fails on what GX writes before the rewrite."""
    stock = tmp_path / "stock.html"
    stock.write_text(
        '<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>\n'
        '<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>\n'
        '<img\n  class="NO-CACHE"\n  src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo.png"/>\n'
        "<style>.navbar-brand a { background: url('https://example.org/logo.png') }</style>\n"
        '<a href="https://greatexpectations.io">Great Expectations</a>\n',
        encoding="utf-8",
    )
    assert len(_external_references(stock)) == 4  # the plain <a> link is not a resource


def test_every_cdn_asset_of_the_installed_gx_templates_is_vendored():
    """A GX upgrade that loads a new asset must fail here, not silently lose it from the pages."""
    import great_expectations

    templates = Path(great_expectations.__file__).parent / "render" / "view" / "templates"
    urls = set()
    for template in templates.glob("*.j2"):
        text = template.read_text(encoding="utf-8")
        for tag in re.finditer(r"<(?:link|script)\b[^>]*>", text, re.S):
            urls.update(re.findall(r"""\b(?:src|href)\s*=\s*["'](https?://[^"']+)["']""", tag.group(0)))
    assert len(urls) >= 14
    assert urls <= set(CDN_ASSETS) | set(VEGA_ASSETS), urls - set(CDN_ASSETS) - set(VEGA_ASSETS)


def test_every_referenced_stylesheet_script_image_and_font_exists(site):
    docs, _, _ = site
    checked = 0
    for page in _generated(docs, ".html"):
        text = page.read_text(encoding="utf-8")
        for tag in re.finditer(r"<(?:link|script|img)\b[^>]*>", text, re.S):
            m = re.search(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']""", tag.group(0))
            if m and not m.group(1).startswith(("data:", "#")):
                assert (page.parent / m.group(1)).resolve().is_file(), (page.relative_to(docs), m.group(1))
                checked += 1
    for css in _generated(docs, ".css"):
        for m in re.finditer(r"""url\(\s*["']?([^)"']+)["']?\s*\)""", css.read_text(encoding="utf-8")):
            if not m.group(1).startswith(("data:", "#")):
                assert (css.parent / m.group(1)).resolve().is_file(), (css.relative_to(docs), m.group(1))
                checked += 1
    assert checked > 50
    stylesheets = {m for p in _generated(docs, ".html") for m in re.findall(r'href="([^"]+\.css)"', p.read_text())}
    assert any(s.endswith("vendor/bootstrap/bootstrap.min.css") for s in stylesheets)
    # every CDN asset GX uses has its vendored copy, licences ship with them
    for local in CDN_ASSETS.values():
        assert (STATIC / local).is_file() and (docs / "static" / "vendor" / local).is_file(), local
    assert (docs / "static" / "vendor" / "fontawesome" / "LICENSE.txt").is_file()


def test_caller_result_is_not_changed(site, outcomes):
    result = outcomes["prices"].result
    assert "run_id" not in result.meta and "landing_file" not in (result.meta.get("batch_spec") or {})


def test_history_is_pruned_before_rendering_and_index_links_only_kept_runs(outcomes, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="expectations.docs")
    docs = tmp_path / "docs"
    start = datetime(2025, 1, 1, 22, tzinfo=timezone.utc)

    def run(i: int) -> list[DocsRecord]:
        return [DocsRecord.from_outcome(f"run{i:02d}", start + timedelta(days=i), f"prices-{i:02d}.parquet",
                                        outcomes["prices"])]

    # 40 runs' results arrive at once: only the newest 5 are kept, and only they are rendered
    index = build_data_docs(docs, [r for i in range(40) for r in run(i)], keep_runs=5)
    stored = sorted(p.name for p in (docs / ".gx" / "validations" / "prices").iterdir())
    assert stored == [f"run{i:02d}" for i in range(35, 40)]
    pages = sorted(p.relative_to(docs).parts[2] for p in (docs / "validations").rglob("*.html"))
    assert pages == stored
    assert {link.split("/")[2] for link in _index_links(index)} == set(stored)

    # one more run: the oldest kept run goes, the pages of the others are not rendered again
    before = {p: p.stat().st_mtime_ns for p in (docs / "validations").rglob("*.html")}
    index = build_data_docs(docs, run(40), keep_runs=5)
    kept = [f"run{i:02d}" for i in range(36, 41)]
    assert sorted(p.name for p in (docs / ".gx" / "validations" / "prices").iterdir()) == kept
    after = {p: p.stat().st_mtime_ns for p in (docs / "validations").rglob("*.html")}
    assert sorted(p.relative_to(docs).parts[2] for p in after) == kept
    assert {link.split("/")[2] for link in _index_links(index)} == set(kept)
    assert all(after[p] == before[p] for p in after if p in before)  # run36..run39 untouched
    assert not (docs / "validations" / "prices" / "run35").exists()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_rewrite_of_one_page(tmp_path):
    docs = tmp_path
    page_dir = docs / "validations" / "s" / "r" / "t"
    stock = (
        '<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>\n'
        '<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>\n'
        '<script src="https://cdn.jsdelivr.net/npm/vega-lite@5"></script>\n'
        '<script src="https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js" '
        'integrity="sha384-x" crossorigin="anonymous"></script>\n'
        '<script src="https://tracker.example.com/t.js"></script>\n'
        '<link rel="shortcut icon" href="../../../static/images/favicon.ico" type="image/x-icon"/>\n'
        '<a href="#"><img class="NO-CACHE"\n src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/'
        'logo-long.png?d=1&dataContextId=abc" alt="Great Expectations"/></a>\n'
        "<style>@import url('https://fonts.example.com/f.css'); .b { background: url('https://x.example/l.png') 0 0; }"
        "</style>\n"
    )
    dropped: set[str] = set()
    out = offline_html(stock, docs, page_dir, dropped)
    assert "http" not in out
    assert 'href="../../../../static/vendor/bootstrap/bootstrap.min.css"' in out
    assert '<script src="../../../../static/vendor/popper/popper.min.js"></script>' in out  # no SRI, no CORS
    assert "vega" not in out  # no chart on the page: no Vega
    assert 'href="../../../../static/images/favicon.ico"' in out  # GX's wrong depth fixed
    assert "<img" not in out and "capspread" in out
    assert "background: none 0 0" in out and "@import" not in out
    assert dropped == {"https://tracker.example.com/t.js"}
    assert offline_html(out, docs, page_dir) == out  # idempotent

    chart = stock + "<script>vegaEmbed('#g', vlSpec, {actions: false});</script>"
    out = offline_html(chart, docs, page_dir)
    assert out.count(VEGA_BUNDLE) == 1 and "vega@5" not in out and "vega-lite@5" not in out


def test_vega_bundle_is_written_only_when_a_page_draws_a_chart(tmp_path, monkeypatch):
    import expectations.docs as docs_mod

    made = []
    monkeypatch.setattr(docs_mod, "_vega_bundle", lambda path: made.append(path))
    (tmp_path / "plain.html").write_text('<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>')
    assert make_offline(tmp_path) == set() and made == []
    (tmp_path / "chart.html").write_text(
        '<script src="https://cdn.jsdelivr.net/npm/vega@5"></script><script>vegaEmbed("#g", {});</script>'
    )
    make_offline(tmp_path)
    assert made == [tmp_path / "static" / "vendor" / VEGA_BUNDLE]
    assert "static/vendor/vega/vega-bundle.js" in (tmp_path / "chart.html").read_text()


def test_set_based_results_render_the_same_pages(outcomes, tmp_path, monkeypatch):
    """A batch validated by the set-based engine (big frames) gets its page, with the sections of
    the page GX's own engine gives the same batch."""
    monkeypatch.setenv("CAPSPREAD_VALIDATION_ENGINE", "setbased")
    setbased = {"prices": validate("prices", _prices(), AS_OF), "cpi": validate("cpi", _cpi(), AS_OF)}
    run_id = "20250611T220500Z-5e7b0a"
    for engine, found in (("gx", outcomes), ("setbased", setbased)):
        records = [DocsRecord.from_outcome(run_id, RUN_TIME, f"landing/{name}/2025-06-11/{name}-{engine}.parquet", o)
                   for name, o in found.items()]
        build_data_docs(tmp_path / engine, records)
    for suite in ("prices", "cpi"):
        gx_page = _page(tmp_path / "gx", suite).read_text(encoding="utf-8")
        sb_page = _page(tmp_path / "setbased", suite).read_text(encoding="utf-8")
        assert list(_column_sections(sb_page)) == list(_column_sections(gx_page)), suite
        assert len(_column_sections(gx_page)) > 3
