"""The HTML report: the brief at the top, then one chart per question, from the published marts.

One self-contained file ``reports/capspread-report-<date>.html``: the Vega, Vega-Lite and
vega-embed JavaScript (from vl-convert, offline) and the styles are inline, the data is inline in
the chart specs, and nothing is fetched when the page opens. Beside it, a PNG of each chart
(``capspread-report-<date>-<chart>.png``, rendered offline by vl-convert) for e-mail and chat.

The same point-in-time rules as the brief apply: rows after the report's date are never drawn, and
when the snapshot is later than that date the current week and month are the week- and
month-to-date values of the scoreboard, and CPI months, short-interest settlements, estimates
editions and Fama-French months are drawn only once they would have been public.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import altair as alt
import vl_convert as vlc

from capspread.brief import (
    Brief,
    Context,
    Marts,
    board_rows,
    brief_from,
    fmt_date,
    make_context,
    number_word,
)
from capspread.config import Config, Home

DAILY_YEARS = 5  # daily series: the last five years
WEEKS = 52  # weekly bars: the last year
MONTHS = 120  # monthly series: the last ten years
WIDTH = 760  # fits a laptop screen beside the margins

UP, DOWN = "#1f77b4", "#d62728"
REGIME_COLORS = {
    "reheating": "#d62728",
    "elevated": "#ff9896",
    "disinflation": "#ffbb78",
    "stable": "#98df8a",
    "below_target": "#aec7e8",
}
INDEX_LABELS = {"SP600": "S&P 600 (small)", "SP400": "S&P 400 (mid)", "SP500": "S&P 500 (large)"}
BUCKET_LABELS = {"small": "small caps", "mid": "mid caps", "large": "large caps"}


@dataclass(frozen=True)
class ChartSpec:
    key: str
    title: str
    note: str
    spec: dict[str, Any]


@dataclass
class Report:
    html_path: Path
    png_paths: list[Path]
    brief: Brief
    charts: list[ChartSpec] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------
# helpers


def _iso(d: date | None) -> str | None:
    return None if d is None else d.isoformat()


def _years_before(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year - years)
    except ValueError:  # 29 February
        return d.replace(year=d.year - years, day=28)


def _month_start(d: date) -> date:
    return d.replace(day=1)


def _next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def _subtitle(ctx: Context, extra: str) -> list[str]:
    return [f"As of {fmt_date(ctx.as_of)} · {extra}"]


def _title(text: str, ctx: Context, extra: str) -> alt.TitleParams:
    return alt.TitleParams(text=text, subtitle=_subtitle(ctx, extra), anchor="start", fontSize=15)


def _empty(title: str, ctx: Context, message: str) -> alt.Chart:
    """A chart that says the data is missing (so the section still has its chart and PNG)."""
    return (
        alt.Chart(alt.Data(values=[{"message": message}]), title=_title(title, ctx, "no data"))
        .mark_text(fontSize=14, color="#666")
        .encode(text="message:N")
        .properties(width=WIDTH, height=120)
    )


def _unit(symbol: str, config: Config) -> str:
    role = next((s.role for s in config.universe if s.symbol == symbol), "etf")
    return "index points" if role == "index" else "USD"


def _pair(marts: Marts, ctx: Context, config: Config) -> tuple[str, str] | None:
    """The size pair to draw: the brief's small/large symbols when the mart has them, else the
    first configured pair with rows."""
    have = {r["pair"] for r in marts.rows(
        "select distinct pair from marts.size_spread_daily where trade_date <= ?", [ctx.as_of])}
    wanted = []
    if ctx.small is not None and ctx.large is not None:
        wanted.append((ctx.small.symbol, ctx.large.symbol))
    wanted += [(p.small, p.large) for p in config.pairs]
    for small, large in wanted:
        if f"{small}/{large}" in have:
            return small, large
    return None


# ------------------------------------------------------------------------------------------------
# the charts


def relative_strength_chart(marts: Marts, ctx: Context, config: Config) -> ChartSpec:
    title = "Small versus large: relative strength and price levels"
    pair = _pair(marts, ctx, config)
    key = "relative-strength"
    if pair is None:
        return ChartSpec(key, title, "No size pair in marts.size_spread_daily.",
                         _empty(title, ctx, "No size-pair data on or before this date.").to_dict())
    small, large = pair
    name = f"{small}/{large}"
    start = _years_before(ctx.as_of, DAILY_YEARS)
    first = marts.scalar("select min(trade_date) from marts.size_spread_daily where pair = ?", [name])
    rows = marts.rows(
        "select trade_date, relative_strength, small_close, large_close from marts.size_spread_daily "
        "where pair = ? and trade_date > ? and trade_date <= ? order by trade_date", [name, start, ctx.as_of])
    values = [{"date": _iso(r["trade_date"]), "rs": r["relative_strength"], "small": r["small_close"],
               "large": r["large_close"]} for r in rows]
    data = alt.Data(values=values)
    x = alt.X("date:T", title="Trading day", axis=alt.Axis(format="%b %Y"))
    rs = (
        alt.Chart(data)
        .mark_line(color="#6a3d9a", strokeWidth=1.5)
        .encode(
            x=x,
            y=alt.Y("rs:Q", title=f"{small}/{large} price ratio (1 = {first})", scale=alt.Scale(zero=False)),
            tooltip=[alt.Tooltip("date:T", title="date"), alt.Tooltip("rs:Q", title="relative strength", format=".3f")],
        )
        .properties(width=WIDTH, height=220, title=alt.TitleParams(
            f"Relative strength {small}/{large} (rising = small caps ahead)", fontSize=12, anchor="start"))
    )
    small_line = (
        alt.Chart(data)
        .mark_line(color="#ff7f0e", strokeWidth=1.3)
        .encode(x=x, y=alt.Y("small:Q", title=f"{small} close ({_unit(small, config)})", scale=alt.Scale(zero=False),
                             axis=alt.Axis(titleColor="#ff7f0e")),
                tooltip=[alt.Tooltip("date:T"), alt.Tooltip("small:Q", title=small, format=",.2f")])
    )
    large_line = (
        alt.Chart(data)
        .mark_line(color="#1f77b4", strokeWidth=1.3)
        .encode(x=x, y=alt.Y("large:Q", title=f"{large} close ({_unit(large, config)})", scale=alt.Scale(zero=False),
                             axis=alt.Axis(titleColor="#1f77b4", orient="right")),
                tooltip=[alt.Tooltip("date:T"), alt.Tooltip("large:Q", title=large, format=",.2f")])
    )
    levels = (
        alt.layer(small_line, large_line)
        .resolve_scale(y="independent")
        .properties(width=WIDTH, height=200, title=alt.TitleParams(
            f"Closes: {small} (left axis, orange) and {large} (right axis, blue)", fontSize=12, anchor="start"))
    )
    chart = alt.vconcat(rs, levels, title=_title(title, ctx, f"daily, last {DAILY_YEARS} years · marts.size_spread_daily"))
    note = (f"Relative strength is the {small}/{large} close ratio rebased to 1 on {first}; "
            f"it rises when {small} beats {large}.")
    return ChartSpec(key, title, note, chart.to_dict())


def _weekly_rows(marts: Marts, ctx: Context, symbol: str, board: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = marts.rows(
        "select week_start, week_end, weekly_return from marts.index_weekly where symbol = ? and week_start <= ? "
        "order by week_start desc limit ?", [symbol, ctx.session, WEEKS])
    rows.reverse()
    out = []
    for i, r in enumerate(rows):
        current = r["week_start"] <= ctx.session <= r["week_end"]
        ret = r["weekly_return"]
        if current and board.get(symbol, {}).get("wtd_return") is not None:
            ret = board[symbol]["wtd_return"]  # the week as it stood on the report's date
        if ret is None:
            continue
        complete = not current or r["week_end"] == ctx.session
        out.append({
            "week": _iso(r["week_start"]),
            "week_end": _iso(min(r["week_end"], ctx.session)),
            "ret": ret,
            "direction": "up" if ret > 0 else "down or flat",
            "window": "last 10 weeks" if i >= len(rows) - 10 else "earlier",
            "status": "complete" if complete else "week to date",
        })
    return out


def weekly_chart(marts: Marts, ctx: Context, config: Config) -> ChartSpec:
    title = "Winning and losing weeks"
    key = "weekly"
    board = board_rows(marts, ctx) if ctx.session else {}
    panels = []
    counts = []
    for s in (ctx.small, ctx.large):
        if s is None:
            continue
        values = _weekly_rows(marts, ctx, s.symbol, board)
        if not values:
            continue
        n = board.get(s.symbol, {}).get("up_weeks_last_10")
        count = f"{number_word(int(n))} of the last 10 weeks up" if n is not None else "fewer than 10 weeks of history"
        counts.append(f"{s.symbol}: {count}")
        data = alt.Data(values=values)
        x = alt.X("week:T", title="Week (Monday)", axis=alt.Axis(format="%b %Y"))
        bars = (
            alt.Chart(data)
            .mark_bar(size=max(3, int(WIDTH / WEEKS * 0.7)))
            .encode(
                x=x,
                y=alt.Y("ret:Q", title="Weekly return (%)", axis=alt.Axis(format=".0%")),
                color=alt.Color("direction:N", title="Week",
                                scale=alt.Scale(domain=["up", "down or flat"], range=[UP, DOWN])),
                opacity=alt.Opacity("window:N", title="Window",
                                    scale=alt.Scale(domain=["last 10 weeks", "earlier"], range=[1.0, 0.35])),
                tooltip=[alt.Tooltip("week:T", title="week of"), alt.Tooltip("week_end:T", title="through"),
                         alt.Tooltip("ret:Q", title="return", format=".1%"), alt.Tooltip("status:N")],
            )
        )
        wtd = (
            alt.Chart(data)
            .transform_filter("datum.status == 'week to date'")
            .mark_text(fontSize=10, color="#333", align="right", dx=-6, baseline="top")
            .encode(x=x, y=alt.value(4), text=alt.value("this week so far →"))
        )
        panel = alt.layer(bars, wtd).properties(
            width=WIDTH, height=160,
            title=alt.TitleParams(f"{s.name} ({s.symbol}): {count}", fontSize=12, anchor="start"))
        panels.append(panel)
    if not panels:
        return ChartSpec(key, title, "No weekly data.", _empty(title, ctx, "No weekly returns on or before this date.").to_dict())
    chart = alt.vconcat(*panels, title=_title(title, ctx, f"weekly price returns, last {WEEKS} weeks · marts.index_weekly"))
    note = ("Bars are weekly price returns; the last 10 weeks are solid, and an unfinished current week counts by "
            "its sign so far. " + "; ".join(counts) + ".")
    return ChartSpec(key, title, note, chart.to_dict())


def size_spread_chart(marts: Marts, ctx: Context, config: Config) -> ChartSpec:
    title = "Monthly size spread against Fama-French SMB"
    key = "size-spread"
    pair = _pair(marts, ctx, config)
    if pair is None:
        return ChartSpec(key, title, "No size pair.", _empty(title, ctx, "No size-spread data on or before this date.").to_dict())
    small, large = pair
    month = _month_start(ctx.as_of)
    start = date(month.year - MONTHS // 12, month.month, 1)
    rows = marts.rows(
        "select month, spread, ff_smb from marts.size_spread_monthly where pair = ? and month > ? and month <= ? "
        "order by month", [f"{small}/{large}", start, month])
    board = board_rows(marts, ctx) if ctx.session else {}
    values = []
    for r in rows:
        spread, smb = r["spread"], r["ff_smb"]
        if r["month"] == month and ctx.session is not None and ctx.cut:
            s, lg = board.get(small, {}).get("mtd_return"), board.get(large, {}).get("mtd_return")
            spread = None if s is None or lg is None else s - lg  # month to date on the report's date
        if smb is not None and ctx.cut and ctx.factors_public(r["month"]) > ctx.as_of:
            smb = None  # not yet published on the report's date
        if spread is not None:
            values.append({"month": _iso(r["month"]), "value": spread, "series": f"{small} − {large} spread"})
        if smb is not None:
            values.append({"month": _iso(r["month"]), "value": smb, "series": "Fama-French SMB"})
    if not values:
        return ChartSpec(key, title, "No monthly spread.", _empty(title, ctx, "No monthly size spread on or before this date.").to_dict())
    data = alt.Data(values=values)
    series = [f"{small} − {large} spread", "Fama-French SMB"]
    color = alt.Color("series:N", title="Series", scale=alt.Scale(domain=series, range=["#9467bd", "#2ca02c"]))
    x = alt.X("month:T", title="Month", axis=alt.Axis(format="%Y"))
    y = alt.Y("value:Q", title="Monthly return difference, small minus large (%)", axis=alt.Axis(format=".0%"))
    tooltip = [alt.Tooltip("month:T", format="%B %Y"), alt.Tooltip("series:N"), alt.Tooltip("value:Q", format=".1%")]
    bars = alt.Chart(data).transform_filter(alt.datum.series == series[0]).mark_bar(opacity=0.7).encode(
        x=x, y=y, color=color, tooltip=tooltip)
    line = alt.Chart(data).transform_filter(alt.datum.series == series[1]).mark_line(
        point=alt.OverlayMarkDef(size=12), strokeWidth=1.2).encode(x=x, y=y, color=color, tooltip=tooltip)
    zero = alt.Chart(alt.Data(values=[{"value": 0}])).mark_rule(color="#444").encode(y=y)
    chart = alt.layer(bars, line, zero).properties(
        width=WIDTH, height=260,
        title=_title(title, ctx, f"monthly, last {MONTHS // 12} years · marts.size_spread_monthly"))
    smb_last = max((v["month"] for v in values if v["series"] == series[1]), default=None)
    note = (f"Bars: {small} monthly price return minus {large}'s (the current month to date). "
            f"Line: the Fama-French small-minus-big factor" +
            (f", published through {smb_last[:7]}." if smb_last else "; none published for this window."))
    return ChartSpec(key, title, note, chart.to_dict())


def short_interest_chart(marts: Marts, ctx: Context, config: Config) -> ChartSpec:
    title = "Short interest by size bucket"
    key = "short-interest"
    rows = marts.rows(
        "select settlement_date, bucket, short_interest, median_days_to_cover, short_interest_change, symbols "
        "from marts.short_interest_by_bucket where settlement_date <= ? order by settlement_date", [ctx.as_of])
    if ctx.cut:
        rows = [r for r in rows if ctx.si_public(r["settlement_date"]) <= ctx.as_of]
    if not rows:
        return ChartSpec(key, title, "No short-interest settlement by size bucket was public on this date.",
                         _empty(title, ctx, "No short-interest data by size bucket public on this date.").to_dict())
    values = [{"date": _iso(r["settlement_date"]), "bucket": BUCKET_LABELS.get(r["bucket"], r["bucket"]),
               "shares_m": r["short_interest"] / 1e6, "dtc": r["median_days_to_cover"],
               "change": r["short_interest_change"], "symbols": r["symbols"]} for r in rows]
    data = alt.Data(values=values)
    color = alt.Color("bucket:N", title="Bucket")
    x = alt.X("date:T", title="Settlement date", axis=alt.Axis(format="%b %Y"))
    tooltip = [alt.Tooltip("date:T", title="settlement"), alt.Tooltip("bucket:N"),
               alt.Tooltip("shares_m:Q", title="short interest (million shares)", format=",.1f"),
               alt.Tooltip("change:Q", title="change since prior", format="+.1%"),
               alt.Tooltip("dtc:Q", title="median days to cover", format=".1f"), alt.Tooltip("symbols:Q")]
    shares = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=60)).encode(
        x=x, y=alt.Y("shares_m:Q", title="Short interest (million shares)"), color=color, tooltip=tooltip,
    ).properties(width=WIDTH, height=200)
    dtc = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=60)).encode(
        x=x, y=alt.Y("dtc:Q", title="Median days to cover (days)"), color=color, tooltip=tooltip,
    ).properties(width=WIDTH, height=140)
    chart = alt.vconcat(shares, dtc, title=_title(title, ctx, "FINRA settlements · marts.short_interest_by_bucket"))
    latest = rows[-1]["settlement_date"]
    note = f"{len({r['settlement_date'] for r in rows})} settlement(s), the latest {fmt_date(latest)}."
    return ChartSpec(key, title, note, chart.to_dict())


def cpi_chart(marts: Marts, ctx: Context, config: Config) -> ChartSpec:
    title = "Headline and core CPI, year over year, with the inflation regime"
    key = "cpi"
    start = _years_before(ctx.as_of, MONTHS // 12)
    rows = marts.rows(
        "select ref_month, headline_yoy, core_yoy, headline_nsa_yoy, regime from marts.inflation_monthly "
        "where ref_month >= ? and ref_month <= ? order by ref_month", [start, ctx.as_of])
    if ctx.cut:
        rows = [r for r in rows if ctx.cpi_release(r["ref_month"]) <= ctx.as_of]
    lines, regimes = [], []
    for r in rows:
        m = _iso(r["ref_month"])
        if r["headline_yoy"] is not None:
            lines.append({"month": m, "value": r["headline_yoy"], "series": "headline (SA)"})
        elif r["headline_nsa_yoy"] is not None:
            lines.append({"month": m, "value": r["headline_nsa_yoy"], "series": "headline (NSA, where SA missing)"})
        if r["core_yoy"] is not None:
            lines.append({"month": m, "value": r["core_yoy"], "series": "core (SA)"})
        if r["regime"] is not None:
            regimes.append({"month": m, "end": _iso(_next_month(r["ref_month"])),
                            "regime": r["regime"].replace("_", " ")})
    if not lines:
        return ChartSpec(key, title, "No CPI month public on this date.", _empty(title, ctx, "No CPI data public on this date.").to_dict())
    x = alt.X("month:T", title="Reference month", axis=alt.Axis(format="%Y"))
    layers = []
    if regimes:
        colors = {k.replace("_", " "): v for k, v in REGIME_COLORS.items()}
        domain = [k for k in colors if any(r["regime"] == k for r in regimes)]
        domain += sorted({r["regime"] for r in regimes} - set(domain))
        layers.append(alt.Chart(alt.Data(values=regimes)).mark_rect(opacity=0.35).encode(
            x=x, x2="end:T",
            fill=alt.Fill("regime:N", title="Regime (core)", scale=alt.Scale(
                domain=domain, range=[colors.get(k, "#dddddd") for k in domain])),
            tooltip=[alt.Tooltip("month:T", format="%B %Y"), alt.Tooltip("regime:N")],
        ))
    t = config.inflation_regime
    target, band = float(t.get("target", 0.02)), float(t.get("band", 0.005))
    y = alt.Y("value:Q", title="Change from a year earlier (%)", axis=alt.Axis(format=".1%"))
    layers.append(alt.Chart(alt.Data(values=[{"value": target - band}, {"value": target + band}])).mark_rule(
        color="#555", strokeDash=[4, 3]).encode(y=y))
    palette = {"headline (SA)": "#1f77b4", "core (SA)": "#000000", "headline (NSA, where SA missing)": "#7f7f7f"}
    series = [k for k in palette if any(v["series"] == k for v in lines)]
    layers.append(alt.Chart(alt.Data(values=lines)).mark_line(strokeWidth=2, point=alt.OverlayMarkDef(size=10)).encode(
        x=x,
        y=y,
        stroke=alt.Stroke("series:N", title="CPI", scale=alt.Scale(domain=series, range=[palette[k] for k in series])),
        tooltip=[alt.Tooltip("month:T", format="%B %Y"), alt.Tooltip("series:N"), alt.Tooltip("value:Q", format=".1%")],
    ))
    chart = alt.layer(*layers).properties(
        width=WIDTH, height=280,
        title=_title(title, ctx, f"monthly, last {MONTHS // 12} years · marts.inflation_monthly"))
    latest = max(v["month"] for v in lines)
    note = (f"Shading: the regime of each month from core YoY against its 3-month annualised pace; dashed lines: "
            f"the target band {target - band:.1%}–{target + band:.1%}. Latest month drawn: {latest[:7]}.")
    return ChartSpec(key, title, note, chart.to_dict())


def valuation_chart(marts: Marts, ctx: Context, config: Config) -> ChartSpec:
    title = "Operating P/E, small versus large, and estimate revisions"
    key = "valuation"
    rows = marts.rows(
        "select as_of_date, index_code, operating_pe, revision_since_prior from marts.earnings_outlook "
        "where as_of_date <= ? order by as_of_date", [ctx.as_of])
    if ctx.cut:
        rows = [r for r in rows if ctx.estimates_public(r["as_of_date"]) <= ctx.as_of]
    if not rows:
        return ChartSpec(key, title, "No estimates snapshot was public on this date.",
                         _empty(title, ctx, "No earnings-estimates snapshot public on this date.").to_dict())
    pe = [{"edition": _iso(r["as_of_date"]), "index": INDEX_LABELS.get(r["index_code"], r["index_code"]),
           "pe": r["operating_pe"]} for r in rows if r["operating_pe"] is not None]
    rev = [{"edition": _iso(r["as_of_date"]), "index": INDEX_LABELS.get(r["index_code"], r["index_code"]),
            "revision": r["revision_since_prior"]} for r in rows if r["revision_since_prior"] is not None]
    order = [INDEX_LABELS[k] for k in ("SP600", "SP400", "SP500")]
    color = alt.Color("index:N", title="Index", sort=order,
                      scale=alt.Scale(domain=order + sorted({v["index"] for v in pe + rev} - set(order))))
    half = WIDTH // 2 - 40
    if pe:
        left = alt.Chart(alt.Data(values=pe)).mark_line(point=alt.OverlayMarkDef(size=80)).encode(
            x=alt.X("edition:T", title="Estimates edition", axis=alt.Axis(format="%b %Y")),
            y=alt.Y("pe:Q", title="Operating P/E (times earnings)", scale=alt.Scale(zero=False)),
            color=color,
            tooltip=[alt.Tooltip("edition:T"), alt.Tooltip("index:N"), alt.Tooltip("pe:Q", format=".1f")],
        ).properties(width=half, height=240, title=alt.TitleParams("Operating P/E", fontSize=12, anchor="start"))
    else:
        left = alt.Chart(alt.Data(values=[{"m": "No P/E in these editions."}])).mark_text(color="#666").encode(
            text="m:N").properties(width=half, height=240)
    if rev:
        right = alt.Chart(alt.Data(values=rev)).mark_bar().encode(
            x=alt.X("edition:T", title="Estimates edition", axis=alt.Axis(format="%b %Y")),
            xOffset="index:N",
            y=alt.Y("revision:Q", title="Next-year EPS revision since prior (%)", axis=alt.Axis(format=".1%")),
            color=color,
            tooltip=[alt.Tooltip("edition:T"), alt.Tooltip("index:N"), alt.Tooltip("revision:Q", format="+.1%")],
        ).properties(width=half, height=240, title=alt.TitleParams("Estimate revisions", fontSize=12, anchor="start"))
    else:
        right = alt.Chart(alt.Data(values=[{"m": "No prior snapshot: revisions need two editions."}])).mark_text(
            color="#666", fontSize=13).encode(text="m:N").properties(
            width=half, height=240, title=alt.TitleParams("Estimate revisions", fontSize=12, anchor="start"))
    chart = alt.hconcat(left, right, title=_title(title, ctx, "estimates editions · marts.earnings_outlook"))
    editions = sorted({r["as_of_date"] for r in rows})
    note = (f"{len(editions)} edition(s), the latest {fmt_date(editions[-1])}. P/E on operating earnings for the "
            "edition's estimate year; revisions compare next-year operating EPS with the prior edition.")
    return ChartSpec(key, title, note, chart.to_dict())


CHARTS = (relative_strength_chart, weekly_chart, size_spread_chart, short_interest_chart, cpi_chart, valuation_chart)
CHART_KEYS = ("relative-strength", "weekly", "size-spread", "short-interest", "cpi", "valuation")


# ------------------------------------------------------------------------------------------------
# rendering


def _vl_version() -> str | None:
    """The Vega-Lite version Altair writes, in vl-convert's spelling (``6.4``), if it has it."""
    wanted = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    return wanted if wanted in vlc.get_vegalite_versions() else None


@lru_cache(maxsize=1)
def javascript_bundle() -> str:
    """Vega, Vega-Lite and vega-embed in one script, from vl-convert (no network)."""
    return vlc.javascript_bundle(vl_version=_vl_version())


def _embeddable(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec without its ``$schema`` URL (the mode is given to vega-embed instead)."""
    return {k: v for k, v in spec.items() if k != "$schema"}


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/").replace("<!--", "<\\!--")


_STYLE = """
:root { color-scheme: light; }
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1b1b1b; background: #fff; max-width: 1000px; margin: 0 auto; padding: 1.5rem 1.25rem 4rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.2rem; margin: 2.2rem 0 .5rem; border-bottom: 1px solid #e3e3e3; padding-bottom: .25rem; }
.meta { color: #555; margin: 0 0 1.2rem; font-size: .92rem; }
.brief { background: #f5f7fa; border-left: 4px solid #4c78a8; padding: .6rem 1.2rem; }
.brief p { margin: .6rem 0; }
.omitted { color: #666; font-size: .88rem; }
.chart { overflow-x: auto; }
.note { color: #555; font-size: .9rem; margin: .4rem 0 0; }
.error { color: #b00020; }
nav ol { columns: 2; padding-left: 1.2rem; margin: .5rem 0 0; }
footer { margin-top: 3rem; color: #777; font-size: .85rem; }
"""


def render_html(brief: Brief, charts: list[ChartSpec], ctx: Context, png_names: dict[str, str]) -> str:
    esc = html.escape
    day = fmt_date(ctx.as_of)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>capspread report, as of {esc(day)}</title>",
        f"<style>{_STYLE}</style>",
        f"<script>{javascript_bundle()}</script>",
        "</head><body>",
        "<header><h1>Are small caps beating large caps?</h1>",
        f'<p class="meta">capspread report as of {esc(day)}'
        + (f" (latest session {esc(fmt_date(ctx.session))})" if ctx.session and ctx.session != ctx.as_of else "")
        + (f" · published snapshot as of {esc(fmt_date(ctx.snapshot_as_of))}" if ctx.snapshot_as_of else "")
        + "</p></header>",
        '<section class="brief" id="brief"><h2 style="border:0;margin-top:.4rem">The brief</h2>',
    ]
    paragraphs = brief.text().split("\n\n")
    parts += [f"<p>{esc(p)}</p>" for p in paragraphs]
    if brief.omitted:
        left_out = "; ".join(f"{o['topic'].replace('_', ' ')}: {o['reason']}" for o in brief.omitted)
        parts.append(f'<p class="omitted">Left out for lack of data — {esc(left_out)}.</p>')
    parts.append("</section>")
    parts.append("<nav><ol>" + "".join(f'<li><a href="#chart-{c.key}">{esc(c.title)}</a></li>' for c in charts)
                 + "</ol></nav>")
    for c in charts:
        parts.append(
            f'<section class="figure" id="chart-{c.key}"><h2>{esc(c.title)}</h2>'
            f'<div class="chart" id="vis-{c.key}" role="img" aria-label="{esc(c.title)}"></div>'
            f'<p class="note">{esc(c.note)} PNG: {esc(png_names[c.key])}.</p></section>'
        )
    specs = {c.key: _embeddable(c.spec) for c in charts}
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"<footer>Generated {esc(generated)} from the published marts. Returns are price returns. "
                 "Everything on this page is inline; it needs no network.</footer>")
    parts.append(
        "<script>\n"
        f"const SPECS = {_script_json(specs)};\n"
        "for (const [key, spec] of Object.entries(SPECS)) {\n"
        "  const el = document.getElementById('vis-' + key);\n"
        "  vegaEmbed(el, spec, {mode: 'vega-lite', actions: false, renderer: 'svg'})\n"
        "    .then(() => el.setAttribute('data-rendered', 'true'))\n"
        "    .catch(err => { el.className += ' error'; el.textContent = 'This chart could not be drawn: ' + err; "
        "console.error(err); });\n"
        "}\n"
        "</script>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def build_report(home: Home, as_of: date | None = None, config: Config | None = None) -> Report:
    """Write the HTML report and one PNG per chart under ``home.reports``."""
    config = config or Config.load()
    with Marts(home.snapshot) as marts:
        ctx = make_context(marts, as_of, config)
        brief = brief_from(marts, ctx, requested=as_of)
        charts = [make(marts, ctx, config) for make in CHARTS]
    home.reports.mkdir(parents=True, exist_ok=True)
    stem = f"capspread-report-{ctx.as_of.isoformat()}"
    png_names = {c.key: f"{stem}-{c.key}.png" for c in charts}
    pngs = []
    version = _vl_version()
    for c in charts:
        png = vlc.vegalite_to_png(_embeddable(c.spec), vl_version=version, scale=2)
        path = home.reports / png_names[c.key]
        _write_atomic(path, png)
        pngs.append(path)
    html_path = home.reports / f"{stem}.html"
    _write_atomic(html_path, render_html(brief, charts, ctx, png_names).encode("utf-8"))
    return Report(html_path=html_path, png_paths=pngs, brief=brief, charts=charts)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


__all__ = ["CHARTS", "CHART_KEYS", "Report", "build_report", "javascript_bundle", "render_html"]
