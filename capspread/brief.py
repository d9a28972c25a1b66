"""The market brief: facts read from the published marts, told in a few sentences.

Every sentence is built from rows of the marts (never from text about a particular week). Each topic
is one ``Fact``: the numbers as structured fields (returns and rates as fractions, as in the
marts) and the sentence that tells them. ``--format json`` prints the same facts as fields.

Point in time. ``build_brief(path, as_of=D)`` reads the scoreboard rows of the session D (or the
last session before D when D is a weekend or holiday) and the history up to D. When the snapshot
was published for a later date than D, the other marts are cut with the publication lags of the
configuration (``[publication_lag]``): a CPI month, a short-interest settlement or an estimates
edition is used only once it would have been public on D.

Missing data leaves its sentence out (listed under ``omitted``); stale data gets a sentence that
says it is stale instead of numbers.
"""

from __future__ import annotations

import calendar
import json
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import duckdb

from capspread.config import Config, Symbol

# A session older than this many calendar days before the requested date is not "the" session of
# that date (a weekend plus a holiday is at most four days).
MAX_SESSION_GAP_DAYS = 4
# Beyond these ages (days between the observation and the brief's date) data is called stale.
STALE_SHORT_INTEREST_DAYS = 45  # FINRA settles twice a month and publishes about 9 days later
STALE_CPI_DAYS = 75  # days after the (conservative) release date of the latest month
STALE_ESTIMATES_DAYS = 120  # days after the estimates edition

_ORDINALS = ["zeroth", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"]
_CARDINALS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
_BUCKET_WORDS = {"small": "small caps", "mid": "mid caps", "large": "large caps"}
_BUCKET_ORDER = {"small": 0, "mid": 1, "large": 2}
_REGIME_WORDS = {
    "reheating": "reheating: core inflation is above the target band and accelerating",
    "disinflation": "disinflation: core inflation is above the target band but slowing",
    "elevated": "elevated: core inflation is above the target band with flat momentum",
    "stable": "stable: core inflation is within the target band",
    "below_target": "below target: core inflation is under the target band",
}


# ------------------------------------------------------------------------------------------------
# words and numbers


def ordinal_word(n: int) -> str:
    """``9`` → ``"ninth"``: words up to ten, then ``11th``, ``22nd``, ``103rd``."""
    if 0 <= n <= 10:
        return _ORDINALS[n]
    if 10 <= n % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def number_word(n: int) -> str:
    """``7`` → ``"seven"``: words up to ten, digits above."""
    return _CARDINALS[n] if 0 <= n <= 10 else f"{n:,}"


def round_half_up(value: float, places: int = 1) -> Decimal:
    """Round the way a reporter does: half away from zero, on the shortest decimal form of the
    float (so 0.25 → 0.3 and −0.25 → −0.3, where Python's ``round`` gives 0.2)."""
    return Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def fmt_pct(fraction: float, places: int = 1) -> str:
    """The magnitude of a fraction as a percentage with one decimal: ``-0.03317`` → ``"3.3%"``;
    a non-zero value that rounds to zero reads ``"less than 0.1%"``."""
    magnitude = _percent(fraction, places)
    if magnitude == 0 and fraction != 0:
        return f"less than {Decimal(1).scaleb(-places)}%"
    return f"{magnitude}%"


def _percent(fraction: float, places: int = 1) -> Decimal:
    """|fraction| × 100 rounded half up, computed in decimal (0.00125 → 0.1, 0.0025 → 0.3)."""
    exact = abs(Decimal(repr(float(fraction)))) * 100
    return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def fmt_points(fraction: float) -> str:
    """A difference of two fractions in percentage points, one decimal."""
    magnitude = _percent(fraction, 1)
    if magnitude == 0 and fraction != 0:
        return "less than 0.1 percentage point"
    return f"{magnitude} percentage point{'' if magnitude == 1 else 's'}"


def fmt_number(value: float, places: int = 2) -> str:
    """``6012.281`` → ``"6,012.28"``."""
    return f"{round_half_up(value, places):,}"


def fmt_date(d: date) -> str:
    return f"{calendar.month_name[d.month]} {d.day}, {d.year}"


def fmt_weekday_date(d: date) -> str:
    return f"{calendar.day_name[d.weekday()]}, {fmt_date(d)}"


def fmt_month(d: date) -> str:
    return f"{calendar.month_name[d.month]} {d.year}"


def join_words(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _add_months(d: date, months: int) -> date:
    m = d.month - 1 + months
    return date(d.year + m // 12, m % 12 + 1, 1)


# ------------------------------------------------------------------------------------------------
# the facts


@dataclass
class Fact:
    """One topic of the brief: its fields and the sentence(s) telling them."""

    topic: str
    sentence: str
    status: str = "ok"  # "ok" or "stale"
    fields: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "status": self.status, "sentence": self.sentence, **self.fields}


@dataclass
class Brief:
    requested_date: date | None
    as_of_date: date | None
    session_date: date | None
    snapshot_as_of_date: date | None
    small_symbol: str | None
    large_symbol: str | None
    facts: list[Fact] = field(default_factory=list)
    omitted: list[dict[str, str]] = field(default_factory=list)

    MARKET_TOPICS = ("week_to_date", "leader", "winning_weeks", "year_to_date", "record_high", "prices")

    @property
    def sentences(self) -> list[str]:
        return [f.sentence for f in self.facts]

    def fact(self, topic: str) -> Fact | None:
        return next((f for f in self.facts if f.topic == topic), None)

    def text(self) -> str:
        """Two paragraphs: the market, then short interest, inflation and estimates."""
        market = [f.sentence for f in self.facts if f.topic in self.MARKET_TOPICS]
        other = [f.sentence for f in self.facts if f.topic not in self.MARKET_TOPICS]
        paragraphs = [" ".join(p) for p in (market, other) if p]
        if not paragraphs:
            return "No market data is available in the published snapshot for this date."
        return "\n\n".join(paragraphs)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requested_date": self.requested_date,
            "as_of_date": self.as_of_date,
            "session_date": self.session_date,
            "snapshot_as_of_date": self.snapshot_as_of_date,
            "small_symbol": self.small_symbol,
            "large_symbol": self.large_symbol,
            "text": self.text(),
            "sentences": self.sentences,
            "facts": {f.topic: f.as_dict() for f in self.facts},
            "omitted": self.omitted,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=1, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# ------------------------------------------------------------------------------------------------
# reading the marts


class Marts:
    """Read-only access to the marts of a snapshot; a missing table reads as empty."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.con = duckdb.connect(str(self.path), read_only=True)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Marts":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def rows(self, query: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        try:
            rel = self.con.execute(query, params or [])
        except duckdb.CatalogException:
            return []
        names = [d[0] for d in rel.description]
        return [dict(zip(names, r)) for r in rel.fetchall()]

    def one(self, query: str, params: list[Any] | None = None) -> dict[str, Any] | None:
        rows = self.rows(query, params)
        return rows[0] if rows else None

    def scalar(self, query: str, params: list[Any] | None = None) -> Any:
        row = self.one(query, params)
        return None if row is None else next(iter(row.values()))


@dataclass(frozen=True)
class Context:
    """What every topic needs: the dates, the chosen symbols and the publication lags."""

    as_of: date  # the date the brief is for (requested, or the snapshot's latest session)
    session: date | None  # the scoreboard session read (<= as_of)
    snapshot_as_of: date | None
    cut: bool  # True when the snapshot is later than as_of: apply publication lags
    lags: dict[str, int]
    small: Symbol | None
    large: Symbol | None
    group: tuple[Symbol, ...]
    week_complete: bool = False  # the session is the last session of its week

    def cpi_release(self, ref_month: date) -> date:
        first = _add_months(ref_month, int(self.lags.get("cpi_months", 1)))
        return first + timedelta(days=int(self.lags.get("cpi_day", 15)) - 1)

    def si_public(self, settlement: date) -> date:
        return settlement + timedelta(days=int(self.lags.get("short_interest_days", 9)))

    def estimates_public(self, edition: date) -> date:
        return edition + timedelta(days=int(self.lags.get("estimates_days", 0)))

    def factors_public(self, month: date) -> date:
        return _add_months(month, int(self.lags.get("factors_monthly_months", 2)))


def snapshot_as_of(marts: Marts) -> date | None:
    """The as-of date of the published run (meta.runs), else the scoreboard's latest session."""
    run = marts.scalar("select max(as_of_date) from meta.runs where published")
    board = marts.scalar("select max(as_of_date) from marts.market_scoreboard")
    return run or board


def _choose(universe: tuple[Symbol, ...], loaded: set[str], size: str) -> Symbol | None:
    """The first configured symbol of ``size`` that is loaded: an index, else an ETF."""
    for role in ("index", "etf"):
        for s in universe:
            if s.role == role and s.size == size and s.symbol in loaded:
                return s
    return None


def make_context(marts: Marts, as_of: date | None, config: Config) -> Context:
    snap = snapshot_as_of(marts)
    if as_of is None:
        as_of = marts.scalar("select max(as_of_date) from marts.market_scoreboard") or snap or date.today()
    session = marts.scalar("select max(as_of_date) from marts.market_scoreboard where as_of_date <= ?", [as_of])
    loaded: set[str] = set()
    if session is not None:
        loaded = {r["symbol"] for r in marts.rows(
            "select symbol from marts.market_scoreboard where as_of_date = ? and close is not null", [session])}
    indexes = tuple(s for s in config.universe if s.role == "index" and s.symbol in loaded)
    group = indexes or tuple(s for s in config.universe if s.role == "etf" and s.symbol in loaded)
    small, large = _choose(config.universe, loaded, "small"), _choose(config.universe, loaded, "large")
    for s in (small, large):  # the pair the brief is about is always in the comparison
        if s is not None and s not in group:
            group = group + (s,)
    week_end = None
    if session is not None and loaded:
        week_end = marts.scalar(
            "select max(week_end) from marts.index_weekly where week_start <= ? and week_end >= ? "
            "and list_contains(?, symbol)", [session, session, sorted(loaded)])
    return Context(
        week_complete=week_end is not None and week_end == session,
        as_of=as_of,
        session=session,
        snapshot_as_of=snap,
        cut=snap is not None and as_of < snap,
        lags=dict(config.publication_lag),
        small=small,
        large=large,
        group=group,
    )


def _first_label(s: Symbol) -> str:
    return f"the {s.name}" if s.role == "index" else f"the {s.name} ({s.symbol})"


def _short_label(s: Symbol) -> str:
    return f"the {s.name}" if s.role == "index" else s.symbol


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


# ------------------------------------------------------------------------------------------------
# topics: each returns a Fact, or a reason string when the topic is left out


def board_rows(marts: Marts, ctx: Context) -> dict[str, dict[str, Any]]:
    rows = marts.rows(
        "select symbol, close, wtd_return, mtd_return, ytd_return, up_weeks_last_10, pct_from_record_high, "
        "record_high, prev_week_close, prev_year_close from marts.market_scoreboard where as_of_date = ?",
        [ctx.session],
    )
    return {r["symbol"]: r for r in rows}


def _moved(fraction: float) -> str:
    if fraction > 0:
        return f"rose {fmt_pct(fraction)}"
    if fraction < 0:
        return f"fell {fmt_pct(fraction)}"
    return "was unchanged"


def week_to_date(ctx: Context, board: dict[str, dict[str, Any]]) -> list[Fact] | str:
    moves = [(s, board[s.symbol]["wtd_return"]) for s in ctx.group if board.get(s.symbol, {}).get("wtd_return") is not None]
    if not moves:
        return "no week-to-date returns for the configured symbols"
    moves.sort(key=lambda m: -m[1])
    parts, last_verb = [], None
    for s, r in moves:
        verb = "rose" if r > 0 else "fell" if r < 0 else "unchanged"
        if verb == last_verb and verb != "unchanged":
            parts.append(f"{_first_label(s)} {fmt_pct(r)}")
        else:
            parts.append(f"{_first_label(s)} {_moved(r)}")
        last_verb = verb
    when = (f"For the week ended {fmt_weekday_date(ctx.session)}" if ctx.week_complete
            else f"Week to date through {fmt_weekday_date(ctx.session)}")
    sentence = f"{when}, {join_words(parts)}."
    facts = [Fact("week_to_date", sentence, fields={
        "session_date": ctx.session,
        "week_complete": ctx.week_complete,
        "symbols": [{"symbol": s.symbol, "name": s.name, "role": s.role, "wtd_return": r, "rank": i + 1}
                    for i, (s, r) in enumerate(moves)],
    })]
    if len(moves) >= 2:
        facts.append(_leader(ctx, moves))
    return facts


def _leader(ctx: Context, moves: list[tuple[Symbol, float]]) -> Fact:
    """Who led, and which of the others the small-cap symbol outpaced (or trailed)."""
    leader, r_leader = moves[0]
    focus = ctx.small if ctx.small is not None and any(s == ctx.small for s, _ in moves) else leader
    r_focus = next(r for s, r in moves if s == focus)
    beaten = [s for s, r in moves if s != focus and r < r_focus]
    trailed = [s for s, r in moves if s != focus and r > r_focus]
    matched = [s for s, r in moves if s != focus and r == r_focus]
    led = "led" if r_leader > 0 else "held up best"
    names = lambda group: join_words([_short_label(s) for s in group])  # noqa: E731
    if not trailed and not matched:
        sentence = f"{_capital(_short_label(focus))} {led}, outpacing {names(beaten)}"
    else:
        bits = []
        if beaten:
            bits.append(f"outpaced {names(beaten)}")
        if matched:
            bits.append(f"matched {names(matched)}")
        if trailed:
            others = len(moves) - 1
            bits.append(f"trailed all {number_word(others)} others" if not beaten and not matched and others > 1
                        else f"trailed {names(trailed)}")
        told = ", ".join(bits[:-1]) + " but " + bits[-1] if len(bits) > 1 else bits[0]
        sentence = f"{_capital(_short_label(leader))} {led}. {_capital(_short_label(focus))} {told}"
    fields: dict[str, Any] = {
        "leader": leader.symbol,
        "symbol": focus.symbol,
        "outpaced": [s.symbol for s in beaten],
        "trailed": [s.symbol for s in trailed],
        "matched": [s.symbol for s in matched],
    }
    if focus == ctx.small and ctx.large is not None and ctx.large != focus:
        r_large = next((r for s, r in moves if s == ctx.large), None)
        if r_large is not None:
            gap = r_focus - r_large
            fields["large_symbol"] = ctx.large.symbol
            fields["small_minus_large_wtd"] = gap
            if gap > 0:
                sentence += f"; its margin over {_short_label(ctx.large)} is {fmt_points(gap)}"
            elif gap < 0:
                sentence += f"; its shortfall against {_short_label(ctx.large)} is {fmt_points(gap)}"
    return Fact("leader", sentence + ".", fields=fields)


def winning_weeks(marts: Marts, ctx: Context, board: dict[str, dict[str, Any]]) -> Fact | str:
    s = ctx.small
    if s is None:
        return "no small-cap symbol of the configured universe is loaded"
    row = board.get(s.symbol)
    if row is None or row["up_weeks_last_10"] is None or row["wtd_return"] is None:
        return f"{s.symbol} has fewer than 10 weeks of history"
    n, r = int(row["up_weeks_last_10"]), row["wtd_return"]
    complete = ctx.week_complete
    name = _capital(_short_label(s))
    up = r > 0
    count = f"{number_word(n)} winning week{'' if n == 1 else 's'}" if n else "no winning weeks"
    if complete:
        if up:
            sentence = f"{name} ended the week up {fmt_pct(r)}, its {ordinal_word(n)} winning week in the last 10."
        else:
            how = f"down {fmt_pct(r)}" if r < 0 else "flat"
            sentence = f"{name} ended the week {how}, leaving it with {count} in the last 10."
    elif up:
        sentence = f"{name} is on track for its {ordinal_word(n)} winning week in the last 10, up {fmt_pct(r)} so far this week."
    else:
        how = f"down {fmt_pct(r)}" if r < 0 else "flat"
        sentence = f"{name} is {how} so far this week, which would leave it with {count} in the last 10."
    return Fact("winning_weeks", sentence, fields={
        "symbol": s.symbol, "up_weeks_last_10": n, "wtd_return": r, "week_complete": complete,
        "current_week_up": up,
    })


def year_to_date(ctx: Context, board: dict[str, dict[str, Any]]) -> Fact | str:
    s = ctx.small
    if s is None:
        return "no small-cap symbol of the configured universe is loaded"
    row = board.get(s.symbol)
    if row is None or row["ytd_return"] is None:
        return f"{s.symbol} has no close at the end of the previous year"
    ytd = row["ytd_return"]
    name = _capital(_short_label(s))
    year = ctx.session.year - 1
    fields: dict[str, Any] = {"symbol": s.symbol, "ytd_return": ytd, "prev_year_close": row["prev_year_close"],
                              "close": row["close"]}
    if ytd < 0:
        if row["prev_year_close"] and row["close"]:
            needed = row["prev_year_close"] / row["close"] - 1
        else:
            needed = 1 / (1 + ytd) - 1
        fields["gain_to_erase_loss"] = needed
        sentence = (f"{name} is down {fmt_pct(ytd)} since the end of {year} and needs to gain {fmt_pct(needed)} "
                    f"to erase its year-to-date loss")
    elif ytd > 0:
        sentence = f"{name} is up {fmt_pct(ytd)} since the end of {year}"
    else:
        sentence = f"{name} is unchanged since the end of {year}"
    large = board.get(ctx.large.symbol) if ctx.large is not None else None
    if large is not None and large["ytd_return"] is not None:
        fields["large_symbol"] = ctx.large.symbol
        fields["large_ytd_return"] = large["ytd_return"]
        ly = large["ytd_return"]
        how = f"a {fmt_pct(ly)} gain" if ly > 0 else f"a {fmt_pct(ly)} loss" if ly < 0 else "no change"
        sentence += f", against {how} for {_short_label(ctx.large)}"
    return Fact("year_to_date", sentence + ".", fields=fields)


def record_high(marts: Marts, ctx: Context, board: dict[str, dict[str, Any]]) -> Fact | str:
    s = ctx.large
    if s is None:
        return "no large-cap symbol of the configured universe is loaded"
    row = board.get(s.symbol)
    if row is None or row["pct_from_record_high"] is None or row["record_high"] is None:
        return f"{s.symbol} has no record close"
    pct, record = row["pct_from_record_high"], row["record_high"]
    when = marts.scalar(
        "select max(as_of_date) from marts.market_scoreboard where symbol = ? and as_of_date <= ? "
        "and abs(close - ?) <= 1e-9 * abs(?)",
        [s.symbol, ctx.session, record, record],
    )
    name = _capital(_short_label(s))
    fields = {"symbol": s.symbol, "close": row["close"], "record_high": record, "record_date": when,
              "pct_from_record_high": pct, "at_record": pct == 0}
    if pct == 0:
        sentence = f"{name} closed at a record {fmt_number(record)}."
    else:
        needed = record / row["close"] - 1
        fields["gain_to_record"] = needed
        on = f" set on {fmt_date(when)}" if when else ""
        sentence = (f"{name} closed at {fmt_number(row['close'])}, {fmt_pct(pct)} below its record close of "
                    f"{fmt_number(record)}{on}.")
    return Fact("record_high", sentence, fields=fields)


def short_interest(marts: Marts, ctx: Context) -> Fact | str:
    dates = [r["settlement_date"] for r in marts.rows(
        "select distinct settlement_date from marts.short_interest_by_bucket where settlement_date <= ? "
        "order by 1 desc", [ctx.as_of])]
    if ctx.cut:
        dates = [d for d in dates if ctx.si_public(d) <= ctx.as_of]
    if not dates:
        return "no short-interest settlement by size bucket public by this date"
    settled = dates[0]
    rows = marts.rows(
        "select bucket, symbols, short_interest, prior_short_interest, short_interest_change, median_days_to_cover, "
        "pct_symbols_decreasing, holdings_as_of, membership_flag from marts.short_interest_by_bucket "
        "where settlement_date = ?", [settled])
    rows.sort(key=lambda r: (_BUCKET_ORDER.get(r["bucket"], 9), r["bucket"]))
    age = (ctx.as_of - settled).days
    fields: dict[str, Any] = {"settlement_date": settled, "age_days": age, "buckets": rows}
    if age > STALE_SHORT_INTEREST_DAYS:
        return Fact("short_interest", f"Short-interest data is stale: the latest settlement on file, "
                    f"{fmt_date(settled)}, is {age:,} days old.", status="stale", fields=fields)
    bits = []
    for r in rows:
        label = _BUCKET_WORDS.get(r["bucket"], f"the {r['bucket']} bucket")
        change = r["short_interest_change"]
        if change is None:
            bit = f"stood at {fmt_number(r['short_interest'] / 1e6, 1)} million shares in {label} (no prior settlement to compare)"
        elif change > 0:
            bit = f"rose {fmt_pct(change)} in {label}"
        elif change < 0:
            bit = f"fell {fmt_pct(change)} in {label}"
        else:
            bit = f"was unchanged in {label}"
        if r["median_days_to_cover"] is not None:
            bit += f" (median days to cover {fmt_number(r['median_days_to_cover'], 1)})"
        bits.append(bit)
    sentence = f"Short interest at the {fmt_date(settled)} settlement {join_words(bits)}"
    later = sorted({r["holdings_as_of"] for r in rows if r["membership_flag"] == "later_snapshot" and r["holdings_as_of"]})
    if later:  # membership could only be taken from holdings published after the settlement
        sentence += f" (size buckets from holdings of {join_words([fmt_date(d) for d in later])}, after the settlement)"
    sentence += "."
    return Fact("short_interest", sentence, fields=fields)


def inflation(marts: Marts, ctx: Context) -> Fact | str:
    rows = marts.rows(
        "select ref_month, headline_yoy, core_yoy, headline_mom_annualized, core_mom_annualized, "
        "headline_3m_annualized, core_3m_annualized, headline_nsa_yoy, regime from marts.inflation_monthly "
        "where ref_month <= ? and (headline_yoy is not null or core_yoy is not null or headline_nsa_yoy is not null) "
        "order by ref_month desc limit 36", [ctx.as_of])
    if ctx.cut:
        rows = [r for r in rows if ctx.cpi_release(r["ref_month"]) <= ctx.as_of]
    if not rows:
        return "no CPI month public by this date"
    latest = rows[0]
    month = latest["ref_month"]
    release = ctx.cpi_release(month)
    age = (ctx.as_of - release).days
    fields: dict[str, Any] = {k: v for k, v in latest.items()}
    fields["age_days"] = age
    label = fmt_month(month)
    if age > STALE_CPI_DAYS:
        return Fact("cpi", f"CPI data is stale: the latest month on file is {label}.", status="stale", fields=fields)
    parts = []
    if latest["headline_yoy"] is not None:
        parts.append(f"{label} CPI rose {fmt_pct(latest['headline_yoy'])} from a year earlier"
                     if latest["headline_yoy"] >= 0 else f"{label} CPI fell {fmt_pct(latest['headline_yoy'])} from a year earlier")
        if latest["core_yoy"] is not None:
            parts[-1] += f", with core prices up {fmt_pct(latest['core_yoy'])}" if latest["core_yoy"] >= 0 else \
                f", with core prices down {fmt_pct(latest['core_yoy'])}"
    elif latest["headline_nsa_yoy"] is not None:
        v = latest["headline_nsa_yoy"]
        parts.append(f"{label} CPI (not seasonally adjusted) {'rose' if v >= 0 else 'fell'} {fmt_pct(v)} from a year "
                     "earlier; seasonally adjusted and core figures for that month are not on file")
    else:  # core only
        v = latest["core_yoy"]
        parts.append(f"{label} core CPI {'rose' if v >= 0 else 'fell'} {fmt_pct(v)} from a year earlier")
    sentence = parts[0]
    if latest["core_3m_annualized"] is not None:
        v = latest["core_3m_annualized"]
        sentence += f"; over three months core ran at a {'-' if v < 0 else ''}{fmt_pct(v)} annualized pace"
    sentence += "."
    regime_row = next((r for r in rows if r["regime"] is not None), None)
    if regime_row is not None:
        words = _REGIME_WORDS.get(regime_row["regime"], regime_row["regime"].replace("_", " "))
        fields["regime_month"] = regime_row["ref_month"]
        fields["regime"] = regime_row["regime"]
        regime_age = (ctx.as_of - ctx.cpi_release(regime_row["ref_month"])).days
        fields["regime_stale"] = regime_age > STALE_CPI_DAYS
        if regime_row["ref_month"] == month:
            sentence += f" The inflation regime is {words}."
        elif regime_age <= STALE_CPI_DAYS:
            sentence += f" The latest regime reading, for {fmt_month(regime_row['ref_month'])}, is {words}."
        else:
            sentence += (f" The inflation regime is stale: it was last classified for "
                         f"{fmt_month(regime_row['ref_month'])}.")
    return Fact("cpi", sentence, fields=fields)


def _index_label(code: str) -> str:
    m = re.fullmatch(r"SP(\d+)", code)
    return f"the S&P {m.group(1)}" if m else code


def _index_size(code: str) -> int:
    """Order small first: S&P 600, 400, 500 (the S&P convention), others after."""
    return {"SP600": 0, "SP400": 1, "SP500": 2}.get(code, 3)


def estimates(marts: Marts, ctx: Context) -> Fact | str:
    editions = [r["as_of_date"] for r in marts.rows(
        "select distinct as_of_date from marts.earnings_outlook where as_of_date <= ? order by 1 desc", [ctx.as_of])]
    if ctx.cut:
        editions = [d for d in editions if ctx.estimates_public(d) <= ctx.as_of]
    if not editions:
        return "no earnings-estimates snapshot public by this date"
    edition = editions[0]
    prior = editions[1] if len(editions) > 1 else None
    rows = marts.rows(
        "select index_code, operating_pe, growth_5y, peg, operating_eps_current_year, operating_eps_next_year, "
        "revision_since_prior from marts.earnings_outlook where as_of_date = ?", [edition])
    rows.sort(key=lambda r: (_index_size(r["index_code"]), r["index_code"]))
    age = (ctx.as_of - edition).days
    fields: dict[str, Any] = {"edition": edition, "prior_edition": prior, "age_days": age, "indexes": rows}
    if age > STALE_ESTIMATES_DAYS:
        return Fact("estimates", f"Earnings estimates are stale: the latest snapshot on file is from "
                    f"{fmt_date(edition)}.", status="stale", fields=fields)
    pes = [r for r in rows if r["operating_pe"] is not None]
    sentence = ""
    if pes:
        first, rest = pes[0], pes[1:]
        sentence = (f"In the estimates of {fmt_date(edition)}, {_index_label(first['index_code'])} traded at "
                    f"{fmt_number(first['operating_pe'], 1)} times operating earnings")
        if rest:
            sentence += ", " + join_words([f"{_index_label(r['index_code'])} at {fmt_number(r['operating_pe'], 1)}" for r in rest])
        sentence += "."
    revised = [r for r in rows if r["revision_since_prior"] is not None]
    if revised:
        bits = []
        for r in revised:
            v = r["revision_since_prior"]
            how = f"up {fmt_pct(v)}" if v > 0 else f"down {fmt_pct(v)}" if v < 0 else "unchanged"
            bits.append(f"{_index_label(r['index_code'])} {how}")
        since = f" of {fmt_date(prior)}" if prior else ""
        sentence += f" Next-year operating EPS estimates were revised since the prior snapshot{since}: {join_words(bits)}."
    elif pes:
        sentence += " There is no earlier estimates snapshot to measure revisions against."
    if not sentence:
        return "the latest estimates snapshot has no P/E or revision"
    return Fact("estimates", sentence.strip(), fields=fields)


# ------------------------------------------------------------------------------------------------


def build_brief(path: Path, as_of: date | None = None, config: Config | None = None) -> Brief:
    """The brief for ``as_of`` (default: the latest session in the snapshot at ``path``)."""
    config = config or Config.load()
    with Marts(path) as marts:
        return brief_from(marts, make_context(marts, as_of, config), requested=as_of)


def brief_from(marts: Marts, ctx: Context, requested: date | None = None) -> Brief:
    """The brief of an open snapshot for a prepared context."""
    brief = Brief(
        requested_date=requested,
        as_of_date=ctx.as_of,
        session_date=ctx.session,
        snapshot_as_of_date=ctx.snapshot_as_of,
        small_symbol=ctx.small.symbol if ctx.small else None,
        large_symbol=ctx.large.symbol if ctx.large else None,
    )

    def add(topic: str, result: Fact | list[Fact] | str) -> None:
        if isinstance(result, str):
            brief.omitted.append({"topic": topic, "reason": result})
        elif isinstance(result, Fact):
            brief.facts.append(result)
        else:
            brief.facts.extend(result)

    if ctx.session is None:
        add("prices", "no closing prices on or before this date")
    elif (ctx.as_of - ctx.session).days > MAX_SESSION_GAP_DAYS:
        age = (ctx.as_of - ctx.session).days
        brief.facts.append(Fact("prices", f"Price data is stale: the latest close on file is from "
                                f"{fmt_date(ctx.session)}.", status="stale",
                                fields={"session_date": ctx.session, "age_days": age}))
    else:
        board = board_rows(marts, ctx)
        add("week_to_date", week_to_date(ctx, board))
        add("winning_weeks", winning_weeks(marts, ctx, board))
        add("year_to_date", year_to_date(ctx, board))
        add("record_high", record_high(marts, ctx, board))
    add("short_interest", short_interest(marts, ctx))
    add("cpi", inflation(marts, ctx))
    add("estimates", estimates(marts, ctx))
    return brief
