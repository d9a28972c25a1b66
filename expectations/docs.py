"""Great Expectations Data Docs for capspread: built after every run, readable offline, bounded.

``build_data_docs`` stores each run's validation results (and the suites that produced them) in a
filesystem-backed GX store under ``<docs_dir>/.gx/`` and renders them with GX's own site builder
(``SiteBuilder`` with the stock ``ValidationResultsPageRenderer`` / ``ExpectationSuitePageRenderer``
and the site index) into static HTML under ``<docs_dir>/``.

The stock pages load Bootstrap, jQuery, Popper, bootstrap-table, bootstrap-datepicker, a dark theme,
Font Awesome and Vega from public CDNs, and the navbar logo from a GX bucket with the context id in
the query string. After GX has written the pages every such reference is rewritten:

* CDN assets point at copies of the same versions vendored in ``expectations/static/`` (see its
  README), copied to ``<docs_dir>/static/vendor/`` next to the pages;
* Vega (only GX's KL-divergence charts use it) is one bundle made offline by ``vl-convert`` the first
  time a page needs it; pages without a chart load no Vega at all;
* the logo ``<img>`` is dropped (replaced by a text brand), the logo ``url()`` in GX's dark-mode
  CSS becomes ``none`` and the newsletter footer is removed;
* any other external script/stylesheet/image reference is removed and reported.

History is bounded: before rendering, results of all but the newest ``keep_runs`` runs are deleted
from the store; GX's index builder then removes their pages. Only this call's results (and any kept
result whose page is missing) are rendered, so a build costs the same on run 40 as on run 5.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
SITE_NAME = "capspread"
VENDOR = "static/vendor"  # where the vendored assets live inside docs_dir
VEGA_BUNDLE = "vega/vega-bundle.js"  # inside VENDOR; made by vl-convert on first need

# every CDN asset the stock GX 1.24 templates load, and its vendored copy under expectations/static
CDN_ASSETS: dict[str, str] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap/bootstrap.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper/popper.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table/bootstrap-table-filter-control.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker/bootstrap-datepicker.min.js",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "bootstrap-dark/bootstrap-prefers-dark.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "fontawesome/css/all.min.css",
}
VEGA_ASSETS = (
    "https://cdn.jsdelivr.net/npm/vega@5",
    "https://cdn.jsdelivr.net/npm/vega-lite@5",
    "https://cdn.jsdelivr.net/npm/vega-embed@6",
)
GX_ASSET_HOST = "great-expectations-web-assets"  # the bucket of the logo (with the context id)

_TAG = re.compile(r"<(script|link|img)\b([^>]*)>(\s*</script>)?", re.I | re.S)
_URL_ATTR = re.compile(r"""\b(src|href)\s*=\s*(["'])(.*?)\2""", re.I | re.S)
_SRI_ATTRS = re.compile(r"""\s+(integrity|crossorigin)\s*=\s*(["']).*?\2""", re.I | re.S)
_CSS_IMPORT = re.compile(r"""@import\s+(?:url\(\s*)?["']?\s*(?:https?:)?//[^;]*;""", re.I)
_CSS_URL = re.compile(r"""url\(\s*(["']?)\s*(?:https?:)?//[^)]*?\1\s*\)""", re.I)
_NEWSLETTER = re.compile(r"<footer>\s*<p>\s*Stay current on everything GX.*?</footer>", re.S)
_BRAND = '<span class="h4 mb-0 align-middle">capspread · Data Docs</span>'


@dataclass(frozen=True)
class DocsRecord:
    """One validated batch of a run, as Data Docs needs it."""

    run_id: str
    run_time: datetime  # when the run started (naive = UTC)
    dataset: str
    landing_file: str  # the batch's landing (or quarantine) file; its name identifies the batch
    suite: Any  # the gx.ExpectationSuite that ran
    result: Any  # the GX ExpectationSuiteValidationResult

    @classmethod
    def from_outcome(cls, run_id: str, run_time: datetime, landing_file: str, outcome: Any) -> DocsRecord:
        """From an ``expectations.runner.Outcome``."""
        return cls(run_id, run_time, outcome.dataset, landing_file, outcome.suite, outcome.result)


def build_data_docs(docs_dir: Path, records: list[DocsRecord], *, keep_runs: int = 30) -> Path:
    """Add ``records`` to the Data Docs under ``docs_dir``, prune to the newest ``keep_runs`` runs,
    render and make the site offline. Returns the path of ``index.html``."""
    if keep_runs < 1:
        raise ValueError("keep_runs must be at least 1")
    started, wall_start = time.perf_counter(), time.time()
    docs_dir = Path(docs_dir).resolve()
    docs_dir.mkdir(parents=True, exist_ok=True)
    ctx = _context(docs_dir)

    new_keys, new_suites = _store(ctx, _newest_runs(records, keep_runs))
    kept = _prune(ctx, keep_runs)
    suites = _prune_suites(ctx, kept)
    todo: list = [k for k in kept if k in new_keys or not _page(docs_dir, k).exists()]
    todo += [k for k in suites if k.name in new_suites or not _page(docs_dir, k).exists()]
    if not todo:
        # an empty list would make GX re-render every stored result: give it a key that matches nothing
        from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

        todo = [ExpectationSuiteIdentifier(name="__nothing_to_render__")]
    ctx.build_data_docs(site_names=[SITE_NAME], resource_identifiers=todo)
    missing = [k for k in todo if k.to_tuple()[0] != "__nothing_to_render__" and not _page(docs_dir, k).exists()]
    for key in missing:  # GX logs a rendering error and goes on: say which page is absent
        log.warning("Data Docs: no page was rendered for %s", "/".join(key.to_tuple()))
    _remove_empty_dirs(docs_dir / ".gx" / "validations")
    _remove_empty_dirs(docs_dir / "validations")

    _copy_vendored(docs_dir / VENDOR)
    dropped = make_offline(docs_dir, since=wall_start - 2)
    for url in sorted(dropped):
        log.warning("Data Docs: removed a reference to an unknown outside resource: %s", url)
    log.info("Data Docs: %d results rendered, %d kept, %.2f s", len(new_keys), len(kept),
             time.perf_counter() - started)
    return docs_dir / "index.html"


# --------------------------------------------------------------------------------------------
# GX context and stores


def _context(docs_dir: Path):
    """An ephemeral GX context whose suite and result stores are files under ``docs_dir/.gx`` and
    whose one Data Docs site is ``docs_dir`` itself."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import DataContextConfig, ProgressBarsConfig

    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.WARNING)
    store = docs_dir / ".gx"

    def files(folder: str) -> dict:
        return {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(store / folder)}

    memory = {"class_name": "InMemoryStoreBackend"}

    config = DataContextConfig(
        config_version=4.0,
        expectations_store_name="expectations_store",
        validation_results_store_name="validation_results_store",
        checkpoint_store_name="checkpoint_store",
        stores={
            "expectations_store": {"class_name": "ExpectationsStore", "store_backend": files("expectations")},
            "validation_results_store": {"class_name": "ValidationResultsStore", "store_backend": files("validations")},
            "checkpoint_store": {"class_name": "CheckpointStore", "store_backend": memory},
            "validation_definition_store": {"class_name": "ValidationDefinitionStore", "store_backend": memory},
        },
        data_docs_sites={
            SITE_NAME: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,  # no walkthrough modal, no calls to action
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "site_section_builders": {
                    # every run name is a validation run (GX's default hides names containing "profiling")
                    "validations": {"run_name_filter": {"matches_regex": ".*"}},
                    "profiling": "0",
                },
            }
        },
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _safe(name: str) -> str:
    """A name usable as one path component of the stores and the site."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")


def _batch_name(landing_file: str, dataset: str) -> str:
    return _safe(Path(str(landing_file or "")).name) or dataset


def _store(ctx, records: list[DocsRecord]) -> tuple[set, set[str]]:
    """Write the records' results (copies, with run id, run time and batch in their meta) and their
    suites to the stores. Returns the new result keys and the names of the suites that changed."""
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    new_keys: set = set()
    suites: dict[str, Any] = {}
    for rec in records:
        if rec.result is None:
            continue
        run_time = rec.run_time if rec.run_time.tzinfo else rec.run_time.replace(tzinfo=timezone.utc)
        run = RunIdentifier(run_name=_safe(str(rec.run_id)) or "run", run_time=run_time)
        suite_name = rec.result.suite_name or (rec.suite.name if rec.suite is not None else rec.dataset)
        batch, n = _batch_name(rec.landing_file, rec.dataset), 1
        key = ValidationResultIdentifier(ExpectationSuiteIdentifier(name=suite_name), run, batch)
        while key in new_keys:  # two batches of one run with the same file name
            n += 1
            key = ValidationResultIdentifier(ExpectationSuiteIdentifier(name=suite_name), run, f"{batch}-{n}")
        result = copy.copy(rec.result)  # the caller's result stays as it is: only the meta differs
        spec = dict(result.meta.get("batch_spec") or {})
        spec.update(data_asset_name=rec.dataset, landing_file=str(rec.landing_file))
        result.meta = {**copy.deepcopy(result.meta), "run_id": run, "batch_spec": spec}
        ctx.validation_results_store.set(key, result)
        new_keys.add(key)
        if rec.suite is not None:
            suites[suite_name] = rec.suite
    changed = set()
    store = ctx.expectations_store
    for name, suite in suites.items():
        key = ExpectationSuiteIdentifier(name=name)
        text = store.serialize(suite)
        if store.has_key(key) and store.store_backend.get(store.key_to_tuple(key)) == text:
            continue  # the same suite as last time: its page need not be rendered again
        store.store_backend.set(store.key_to_tuple(key), text)
        changed.add(name)
    return new_keys, changed


def _newest_runs(records: list[DocsRecord], keep_runs: int) -> list[DocsRecord]:
    """The records of the newest ``keep_runs`` runs among them: older ones would be pruned at once."""
    newest: dict[str, datetime] = {}
    for rec in records:
        t = rec.run_time if rec.run_time.tzinfo else rec.run_time.replace(tzinfo=timezone.utc)
        newest[rec.run_id] = max(newest.get(rec.run_id, t), t)
    keep = set(sorted(newest, key=lambda r: (newest[r], r), reverse=True)[:keep_runs])
    return [rec for rec in records if rec.run_id in keep]


def _prune(ctx, keep_runs: int) -> list:
    """Delete the stored results of all runs but the newest ``keep_runs`` (newest by run time).
    Returns the keys that remain."""
    keys = ctx.validation_results_store.list_keys()
    newest: dict[str, datetime] = {}
    for k in keys:
        run = k.run_id.run_name or ""
        newest[run] = max(newest.get(run, k.run_id.run_time), k.run_id.run_time)
    keep = set(sorted(newest, key=lambda r: (newest[r], r), reverse=True)[:keep_runs])
    kept = []
    for k in keys:
        if (k.run_id.run_name or "") in keep:
            kept.append(k)
        else:
            ctx.validation_results_store.remove_key(k)
    return kept


def _prune_suites(ctx, kept: list) -> list:
    """Delete stored suites that no kept result refers to (GX's index builder then deletes their
    pages). Returns the keys of the suites that remain."""
    used = {k.expectation_suite_identifier.name for k in kept}
    remain = []
    for key in ctx.expectations_store.list_keys():
        if key.name in used:
            remain.append(key)
        else:
            ctx.expectations_store.remove_key(key)
    return remain


def _page(docs_dir: Path, key) -> Path:
    """Where GX's site store writes the page of a result or suite key."""
    from great_expectations.data_context.types.resource_identifiers import ValidationResultIdentifier

    section = "validations" if isinstance(key, ValidationResultIdentifier) else "expectations"
    parts = key.to_tuple()
    return docs_dir.joinpath(section, *parts[:-1], f"{parts[-1]}.html")


def _remove_empty_dirs(root: Path) -> None:
    if not root.is_dir():
        return
    for folder, _, _ in sorted(os.walk(root), key=lambda t: len(t[0]), reverse=True):
        if folder != str(root) and not os.listdir(folder):
            os.rmdir(folder)


# --------------------------------------------------------------------------------------------
# offline assets


def _copy_vendored(target: Path) -> None:
    """Copy expectations/static (with its licences) to ``target`` where missing or of another size."""
    for src in STATIC.rglob("*"):
        if src.is_dir():
            continue
        dst = target / src.relative_to(STATIC)
        if dst.exists() and dst.stat().st_size == src.stat().st_size:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)


def _vega_bundle(path: Path) -> None:
    """Vega, Vega-Lite 5 and Vega-Embed in one classic script (globals ``vega``, ``vegaLite``,
    ``vegaEmbed``), bundled offline by vl-convert; written once per docs site."""
    if path.exists():
        return
    import vl_convert as vlc

    fives = [v for v in vlc.get_vegalite_versions() if v.startswith("5.")]
    version = max(fives, key=lambda v: tuple(int(p) for p in v.split("."))) if fives else None
    bundle = vlc.javascript_bundle(vl_version=version)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(bundle, encoding="utf-8")
    tmp.replace(path)


def _external(url: str) -> bool:
    u = url.strip().lower()
    return u.startswith(("http://", "https://", "//"))


def offline_html(text: str, docs_dir: Path, page_dir: Path, dropped: set[str] | None = None) -> str:
    """Rewrite one generated page so that it loads nothing from outside ``docs_dir``."""
    dropped = set() if dropped is None else dropped
    up = Path(os.path.relpath(docs_dir, page_dir)).as_posix()
    prefix = "" if up == "." else up + "/"  # from the page back to docs_dir
    wants_vega = "vegaEmbed(" in text
    vega_done = False

    def tag(m: re.Match) -> str:
        nonlocal vega_done
        name, attrs, close = m.group(1).lower(), m.group(2), m.group(3) or ""
        am = _URL_ATTR.search(attrs)
        if not am:
            return m.group(0)
        url = am.group(3).strip()
        if not _external(url):
            if "static/" in url and not url.startswith(("data:", "#")):
                # GX counts "../" per template and gets some wrong (the favicon of result pages)
                local = prefix + "static/" + url.split("static/", 1)[1]
                return m.group(0).replace(am.group(0), f"{am.group(1)}={am.group(2)}{local}{am.group(2)}", 1)
            return m.group(0)
        if url in CDN_ASSETS:
            local = f"{prefix}{VENDOR}/{CDN_ASSETS[url]}"
        elif url in VEGA_ASSETS and wants_vega and not vega_done:
            vega_done = True
            local = f"{prefix}{VENDOR}/{VEGA_BUNDLE}"
        elif url in VEGA_ASSETS:
            return ""
        elif name == "img" and GX_ASSET_HOST in url:
            return _BRAND
        else:
            dropped.add(url)
            return ""
        attrs = _SRI_ATTRS.sub("", attrs)  # SRI needs CORS, which file:// pages cannot do
        attrs = attrs.replace(am.group(0), f"{am.group(1)}={am.group(2)}{local}{am.group(2)}", 1)
        return f"<{m.group(1)}{attrs}>{close}"

    text = _TAG.sub(tag, text)
    text = offline_css(text)
    return _NEWSLETTER.sub("", text)


def offline_css(text: str) -> str:
    """Drop ``@import`` of outside stylesheets and turn outside ``url()`` into ``none``."""
    return _CSS_URL.sub("none", _CSS_IMPORT.sub("", text))


def make_offline(docs_dir: Path, since: float | None = None) -> set[str]:
    """Rewrite the generated pages and stylesheets under ``docs_dir`` (idempotent). With ``since``
    (a ``time.time()``), only files written since then, or whose head still loads something from
    outside, are read in full. Returns the unknown outside URLs that were removed."""
    docs_dir = Path(docs_dir)
    dropped: set[str] = set()
    needs_vega = False
    vendor = docs_dir / VENDOR
    for folder, dirs, files in os.walk(docs_dir):
        here = Path(folder)
        if here == docs_dir:
            dirs[:] = [d for d in dirs if d != ".gx"]
        if here == vendor:
            dirs[:] = []
            continue
        for fname in files:
            if not fname.endswith((".html", ".css")):
                continue
            path = here / fname
            if since is not None and path.stat().st_mtime < since and not _stock_head(path):
                continue
            text = path.read_text(encoding="utf-8")
            if fname.endswith(".html"):
                new = offline_html(text, docs_dir, here, dropped)
                needs_vega = needs_vega or VEGA_BUNDLE in new
            else:
                new = offline_css(text)
            if new != text:
                path.write_text(new, encoding="utf-8")
    if needs_vega:
        _vega_bundle(vendor / VEGA_BUNDLE)
    return dropped


def _stock_head(path: Path) -> bool:
    """Whether the first few KB (where GX puts its CDN links) still reference an outside URL."""
    with path.open("rb") as f:
        head = f.read(4096)
    return b'="http' in head or b"='http" in head or b'="//' in head
