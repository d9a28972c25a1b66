"""`capspread report` on the real sample as of 2025-06-11: one self-contained HTML file with every chart,
a PNG of each chart beside it, and nothing fetched from outside — checked in the file."""

from __future__ import annotations

import json
import re
import struct
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import run_cli
from tiny_marts import tiny_home

from capspread.brief import build_brief
from capspread.config import Home
from capspread.report import CHART_KEYS, build_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
AS_OF_TEXT = "As of June 11, 2025"
# URLs that appear only as strings inside the Vega libraries (XML namespaces, the editor link of the
# actions menu, which is switched off, and schema identifiers); none is requested by the page.
LIBRARY_STRINGS = {
    "http://www.w3.org/1999/xlink",
    "http://www.w3.org/2000/svg",
    "http://www.w3.org/2000/xmlns/",
    "https://github.com/vega/vega-lite/issues/2415",
    "https://vega.github.io/editor/",
    "https://vega.github.io/schema/vega/v6.json",
}


@pytest.fixture(scope="module")
def report(home_2025_06_11):
    home, proc = home_2025_06_11
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = run_cli(home, "report", "--as-of", "2025-06-11")
    assert out.returncode == 0, out.stdout + out.stderr
    path = home / "reports" / "capspread-report-2025-06-11.html"
    return path, out.stdout


class _Refs(HTMLParser):
    """Tags and the attributes that make a browser fetch something."""

    FETCHING = {"src", "href", "srcset", "data", "poster", "action", "formaction", "background", "xlink:href"}

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.refs: list[tuple[str, str, str]] = []
        self.ids: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in self.FETCHING and value is not None:
                self.refs.append((tag, name, value))
            if name == "id" and value:
                self.ids.append(value)
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def _specs(html: str) -> dict:
    match = re.search(r"const SPECS = (\{.*?\});\n", html, re.S)
    assert match, "the chart specs are not in the page"
    return json.loads(match.group(1))


def _walk(node):
    yield node
    if isinstance(node, dict):
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def test_report_is_written_and_named(report):
    path, stdout = report
    assert path.exists()
    assert f"report: {path}" in stdout
    assert path.stat().st_size < 5_000_000  # a few MB at most


def test_report_references_nothing_outside_the_file(report):
    path, _ = report
    html = path.read_text(encoding="utf-8")
    parser = _Refs()
    parser.feed(html)
    assert "link" not in parser.tags and "iframe" not in parser.tags and "img" not in parser.tags
    for tag, name, value in parser.refs:
        assert value.startswith("#"), f"<{tag} {name}={value!r}> points outside the page"
    scripts_with_src = re.findall(r"<script[^>]*\bsrc\s*=", html, re.I)
    assert not scripts_with_src
    assert "@import" not in html and not re.search(r"url\(\s*['\"]?(https?:)?//", html)
    assert set(re.findall(r"https?://[^\s\"'`)<>\\]+", html)) <= LIBRARY_STRINGS
    # the libraries are inline: vega-embed is defined by a script of the page itself
    assert any("vegaEmbed" in s and len(s) > 500_000 for s in parser.scripts)
    for node in _walk(_specs(html)):
        assert not (isinstance(node, dict) and "url" in node), "a chart loads data from a URL"


def test_report_has_the_brief_first_and_every_chart(report):
    path, _ = report
    html = path.read_text(encoding="utf-8")
    brief = build_brief(path.parent.parent / "published" / "capspread.duckdb", date(2025, 6, 11))
    assert len(brief.sentences) >= 5
    for sentence in brief.sentences:
        assert sentence.replace("&", "&amp;") in html
    assert html.index("Week to date through Wednesday, June 11, 2025") < html.index('id="vis-')
    specs = _specs(html)
    assert list(specs) == list(CHART_KEYS)
    for key, spec in specs.items():
        assert f'id="vis-{key}"' in html
        assert "$schema" not in spec
        title = spec["title"]
        assert AS_OF_TEXT in " ".join(title["subtitle"]), key
        # every positional axis has a title; data is inline
        for node in _walk(spec):
            if isinstance(node, dict) and "encoding" in node:
                for channel in ("x", "y"):
                    enc = node["encoding"].get(channel)
                    if isinstance(enc, dict) and "field" in enc:
                        assert enc.get("title"), (key, channel, enc)
    # the charts with data on the sample hold data; the empty ones say why
    datasets = {k: [n["values"] for n in _walk(s) if isinstance(n, dict) and "values" in n] for k, s in specs.items()}
    for key in ("relative-strength", "weekly", "size-spread", "cpi"):
        assert max(len(v) for v in datasets[key]) > 40, key
    rs = max(datasets["relative-strength"], key=len)
    assert rs[-1]["date"] == "2025-06-11" and all(r["date"] <= "2025-06-11" for r in rs)
    assert "No short-interest data" in json.dumps(specs["short-interest"])
    assert "No earnings-estimates snapshot" in json.dumps(specs["valuation"])


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_a_png_of_each_chart_beside_the_report(report):
    path, stdout = report
    for key in CHART_KEYS:
        png = path.with_name(f"capspread-report-2025-06-11-{key}.png")
        assert png.exists(), key
        assert f"chart:  {png}" in stdout
        width, height = _png_size(png)
        assert width >= 600 and height >= 150, (key, width, height)


def test_report_on_an_empty_snapshot_draws_every_chart_as_missing(tmp_path, monkeypatch):
    monkeypatch.setattr("capspread.report.javascript_bundle", lambda: "/* libraries left out of this test */")
    home = Home.from_env(tiny_home(tmp_path, {}))
    result = build_report(home)
    assert result.html_path.exists()
    assert [c.key for c in result.charts] == list(CHART_KEYS)
    assert all(c.spec["title"]["subtitle"][0].endswith("no data") for c in result.charts)
    for p in result.png_paths:
        _png_size(p)
    assert "No market data is available" in result.html_path.read_text(encoding="utf-8")

