"""A deterministic SYNTHETIC universe for the scale benchmark, and a source that serves it.

Nothing here is market data. Every symbol is ``SYN<nnnnn>``, every issue name starts with
``SYNTHETIC``, the short-interest ``market`` is ``SYNTHETIC``, the source is ``synthetic``, every
file is named ``SYNTHETIC_<dataset>_….parquet`` and carries ``capspread_synthetic=true`` (with the
seed and the generator) in its Parquet key-value metadata.

Shapes, per symbol ``i`` (drawn from ``numpy.random.default_rng([seed, i])``, so symbol ``i`` is the
same whatever the size of the universe):

- sessions: the real XNYS calendar (``transforms.calendar.sessions``: holidays, the 2001 and 2012
  closures) over ``years`` ending on ``END``; ``NIGHTLY`` is the next session, the nightly day;
- prices: a log random walk with drift and mean reversion (so 25 years stay in a plausible
  range), fat-tailed jumps, open/high/low around the close, log-normal volume; some symbols list
  late (IPO), some delist before the nightly day, and a few sessions are missing (halts);
- splits (2:1, 3:1, 3:2, 4:1): ``close`` and ``volume`` are as traded, so a split shows as a
  one-day drop (the landing suite's move warning fires, as for a real unadjusted feed);
  ``adj_close`` is continuous (split and dividend adjusted);
- short interest: FINRA's twice-monthly settlements (the session on or before the 15th, the last
  session of the month), a mean-reverting days-to-cover, prior short interest chained from the
  previous settlement, a few NULL days to cover (FINRA's 999.99 sentinel) and zero volumes;
- holdings: one snapshot per year of two SYNTHETIC funds (``SYNTHLARGE`` = the top third by market
  value, ``SYNTHSMALL`` = the rest), which define the short-interest size buckets.

Files: the history is one file per dataset and calendar year (rows public by ``END``); the rows
that become public in (``END``, ``NIGHTLY``] go to ``SYNTHETIC_<dataset>_nightly_<date>.parquet``:
one new trading day and one new short-interest settlement.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks import SYNTHETIC

GENERATOR_VERSION = 4
END = date(2026, 11, 20)  # the last session of the backfilled history (a Friday)
MANIFEST = f"{SYNTHETIC}_manifest.json"
SMALL_FUND, LARGE_FUND = "SYNTHSMALL", "SYNTHLARGE"
LAGS = {  # the publication lags of config/capspread.toml
    "prices_days": 0, "short_interest_days": 9, "cpi_months": 1, "cpi_day": 15,
    "factors_monthly_months": 2, "factors_daily_days": 30, "holdings_days": 1, "estimates_days": 0,
}


@dataclass(frozen=True)
class Universe:
    symbols: int = 3000
    years: float = 25.0
    seed: int = 20261124
    end: date = END

    @property
    def start(self) -> date:
        whole = int(self.years)
        if whole == self.years:
            return date(self.end.year - whole, self.end.month, self.end.day) + timedelta(days=1)
        return self.end - timedelta(days=round(365.25 * self.years) - 1)

    @property
    def nightly(self) -> date:
        from transforms.calendar import sessions

        return sessions(self.end + timedelta(days=1), self.end + timedelta(days=10))["trade_date"][0]

    @property
    def key(self) -> str:
        return f"{SYNTHETIC}_sym{self.symbols}_yr{self.years:g}_seed{self.seed}_v{GENERATOR_VERSION}"

    def symbol(self, i: int) -> str:
        return f"SYN{i:05d}"


def settlement_dates(days: list[date]) -> list[date]:
    """FINRA-style settlements among ``days`` (sorted sessions): per month the last session on or
    before the 15th and the last session of the month."""
    out: set[date] = set()
    by_month: dict[tuple[int, int], list[date]] = {}
    for d in days:
        by_month.setdefault((d.year, d.month), []).append(d)
    for month in by_month.values():
        mid = [d for d in month if d.day <= 15]
        if mid:
            out.add(mid[-1])
        out.add(month[-1])
    return sorted(out)


def ar1(x: np.ndarray, phi: float, block: int = 128) -> np.ndarray:
    """``y[t] = phi * y[t-1] + x[t]`` (``y[-1] = 0``), vectorised by blocks short enough that
    ``phi ** -block`` stays far from overflow."""
    y = np.empty_like(x, dtype=np.float64)
    carry = 0.0
    powers = phi ** np.arange(1, block + 1)  # phi^1 .. phi^block
    for start in range(0, x.size, block):
        chunk = x[start:start + block]
        k = chunk.size
        p = powers[:k]
        scaled = np.cumsum(chunk / (p / phi))  # sum of phi^-(j) x_j, j = 0..t
        y[start:start + k] = (p / phi) * scaled + carry * p
        carry = y[start + k - 1]
    return y


def _symbol_arrays(u: Universe, i: int, n: int, settle_pos: np.ndarray) -> dict:
    """Prices, short interest and size of symbol ``i`` over ``n`` sessions (positions)."""
    rng = np.random.default_rng([u.seed, i])
    listed = 0 if rng.random() >= 0.08 else int(rng.integers(1, max(2, int(n * 0.5))))
    delisted = n if rng.random() >= 0.02 else int(rng.integers(max(1, int(n * 0.5)), max(2, n - 1)))
    halted = rng.random(n) < 0.0008
    vol = rng.uniform(0.008, 0.028)
    growth = float(np.clip(rng.normal(0.0003, 0.00025), -0.0002, 0.0008))
    p0 = float(np.exp(rng.normal(3.2, 0.8)))
    shocks = rng.standard_normal(n) * vol
    jumps = np.where(rng.random(n) < 0.0005, rng.normal(0.0, 0.18, n), 0.0)
    walk = ar1(shocks + jumps, 0.998)  # mean reverting around the drift
    adj = p0 * np.exp(growth * np.arange(n) + walk)
    # splits as traded: before a split the price is higher and the volume lower by its ratio
    ratio = np.ones(n)
    for _ in range(rng.poisson(0.35)):
        day = int(rng.integers(max(listed, 1), max(delisted - 1, listed + 2)))
        if day < n:
            ratio[day] *= rng.choice([2.0, 3.0, 1.5, 4.0])
    after = np.cumprod(ratio[::-1])[::-1]  # product of ratios of splits on or after each day
    factor = np.append(after[1:], 1.0)  # splits strictly after the day
    close = np.round(adj * factor, 4)
    gap = rng.normal(0.0, vol * 0.4, n)
    open_ = np.round(np.append(close[0], close[:-1] / ratio[1:]) * np.exp(gap), 4)  # after a split: at its new price
    spread = np.abs(rng.normal(0.0, vol * 0.5, (2, n)))
    high = np.round(np.maximum(open_, close) * np.exp(spread[0]), 4)
    low = np.round(np.minimum(open_, close) * np.exp(-spread[1]), 4)
    # dividends: a quarterly payer's adjusted close is lower before each ex date
    divs = np.zeros(n)
    if rng.random() < 0.4:
        quarter = rng.uniform(0.005, 0.03) / 4
        divs[int(rng.integers(0, 63))::63] = quarter
    dfactor = np.append(np.cumprod((1 - divs)[::-1])[::-1][1:], 1.0)
    adj_close = np.round(adj * dfactor, 4)
    base_volume = float(np.exp(rng.normal(13.0, 1.3)))
    volume = np.round(base_volume * np.exp(rng.normal(0.0, 0.45, n)) / factor)
    keep = np.zeros(n, dtype=bool)
    keep[listed:delisted] = True
    keep &= ~halted
    keep[listed] = listed < delisted
    rows = np.flatnonzero(keep)
    # short interest at the settlements while listed
    m = settle_pos.size
    log_dtc = np.log(rng.uniform(1.0, 6.0)) + ar1(rng.normal(0.0, 0.12, m), 0.9)
    adv = np.round(base_volume * np.exp(rng.normal(0.0, 0.2, m)) / factor[settle_pos]).astype(np.int64)
    adv[rng.random(m) < 0.0005] = 0
    short = np.round(adv * np.exp(log_dtc)).astype(np.int64)
    short[adv == 0] = np.round(base_volume * np.exp(log_dtc[adv == 0])).astype(np.int64)
    prior = np.append(np.round(short[0] * np.exp(rng.normal(0.0, 0.1))), short[:-1]).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        dtc = np.where(adv > 0, np.round(short / np.maximum(adv, 1), 2), np.nan)
    dtc[rng.random(m) < 0.001] = np.nan  # FINRA's 999.99 sentinel, stored as NULL
    active = (settle_pos >= listed) & (settle_pos < delisted)
    shares_out = float(np.exp(rng.normal(17.5, 1.2)))
    return {
        "rows": rows, "open": open_[rows], "high": high[rows], "low": low[rows], "close": close[rows],
        "adj_close": adj_close[rows], "volume": volume[rows], "si_rows": np.flatnonzero(active),
        "short": short[active], "prior": prior[active], "adv": adv[active], "dtc": dtc[active],
        "cap": close * shares_out, "listed": listed, "delisted": delisted,
    }


def generate_frames(u: Universe) -> dict[str, pl.DataFrame]:
    """The whole SYNTHETIC universe as frames in the datasets' source schemas."""
    from sources.schemas import conform
    from transforms.calendar import sessions

    days = sessions(u.start, u.nightly)["trade_date"].to_list()
    n = len(days)
    day_series = pl.Series("trade_date", days, dtype=pl.Date)
    settles = [d for d in settlement_dates(days)]
    pos = {d: k for k, d in enumerate(days)}
    settle_pos = np.array([pos[d] for d in settles], dtype=np.int64)
    settle_series = pl.Series("settlement_date", settles, dtype=pl.Date)
    # holdings snapshots: the last session of every year of the history before the last one
    snaps = sorted({max(d for d in days if d.year == y) for y in {d.year for d in days} if y < u.end.year})
    snap_pos = np.array([pos[d] for d in snaps], dtype=np.int64)

    price_parts: dict[str, list] = {k: [] for k in ("sym", "pos", "open", "high", "low", "close", "adj_close", "volume")}
    si_parts: dict[str, list] = {k: [] for k in ("sym", "pos", "short", "prior", "adv", "dtc")}
    caps = np.full((u.symbols, snap_pos.size), np.nan)
    for i in range(u.symbols):
        a = _symbol_arrays(u, i, n, settle_pos)
        price_parts["sym"].append(np.full(a["rows"].size, i, dtype=np.int32))
        price_parts["pos"].append(a["rows"])
        for k in ("open", "high", "low", "close", "adj_close", "volume"):
            price_parts[k].append(a[k])
        si_parts["sym"].append(np.full(a["si_rows"].size, i, dtype=np.int32))
        si_parts["pos"].append(a["si_rows"])
        si_parts["short"].append(a["short"])
        si_parts["prior"].append(a["prior"])
        si_parts["adv"].append(a["adv"])
        si_parts["dtc"].append(a["dtc"])
        live = (snap_pos >= a["listed"]) & (snap_pos < a["delisted"])
        caps[i, live] = a["cap"][snap_pos[live]]

    names = pl.Series("symbol", [u.symbol(i) for i in range(u.symbols)], dtype=pl.String)
    issue = pl.Series("issue_name", [f"{SYNTHETIC} ISSUE {i:05d}" for i in range(u.symbols)], dtype=pl.String)
    cat = lambda parts, k: np.concatenate(parts[k]) if parts[k] else np.array([])  # noqa: E731
    psym = cat(price_parts, "sym").astype(np.int64)
    prices = pl.DataFrame({
        "symbol": names.gather(psym),
        "trade_date": day_series.gather(cat(price_parts, "pos").astype(np.int64)),
        **{k: cat(price_parts, k) for k in ("open", "high", "low", "close", "adj_close", "volume")},
    })
    ssym = cat(si_parts, "sym").astype(np.int64)
    dtc = cat(si_parts, "dtc")
    short_interest = pl.DataFrame({
        "symbol": names.gather(ssym),
        "settlement_date": settle_series.gather(cat(si_parts, "pos").astype(np.int64)),
        "issue_name": issue.gather(ssym),
        "market": pl.Series([SYNTHETIC]).gather(np.zeros(ssym.size, dtype=np.int64)),
        "short_interest": cat(si_parts, "short").astype(np.int64),
        "prior_short_interest": cat(si_parts, "prior").astype(np.int64),
        "avg_daily_volume": cat(si_parts, "adv").astype(np.int64),
        "days_to_cover": pl.Series(dtc, nan_to_null=True),
    })
    holdings = _holdings(u, names, snaps, caps)
    return {
        "prices": conform("prices", prices).sort("symbol", "trade_date"),
        "short_interest": conform("short_interest", short_interest).sort("symbol", "settlement_date"),
        "holdings": conform("holdings", holdings),
    }


def _holdings(u: Universe, names: pl.Series, snaps: list[date], caps: np.ndarray) -> pl.DataFrame:
    parts = []
    for k, snap in enumerate(snaps):
        col = caps[:, k]
        live = np.flatnonzero(~np.isnan(col))
        if live.size == 0:
            continue
        order = live[np.argsort(-col[live], kind="stable")]
        cut = max(1, order.size // 3)
        for fund, members in ((LARGE_FUND, order[:cut]), (SMALL_FUND, order[cut:])):
            if members.size == 0:
                continue
            mv = col[members] * 0.02
            parts.append(pl.DataFrame({
                "fund": fund, "as_of_date": snap, "symbol": names.gather(members),
                "name": [f"{SYNTHETIC} ISSUE {m:05d}" for m in members], "sector": SYNTHETIC,
                "asset_class": "Equity", "market_value": mv, "weight": mv / mv.sum(), "shares": np.round(mv / 10.0),
            }))
    if not parts:
        from sources.schemas import empty

        return empty("holdings")
    return pl.concat(parts).with_columns(pl.col("as_of_date").cast(pl.Date))


def write_universe(u: Universe, folder: Path, log=print) -> dict:
    """Generate ``u`` into ``folder`` (once: an existing manifest of the same universe is reused)."""
    from sources.schemas import DATE_COLUMN
    from transforms.pit import available_on

    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / MANIFEST
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("key") == u.key and all((folder / f["name"]).exists() for f in manifest["files"]):
            return manifest
    t0 = time.perf_counter()
    frames = generate_frames(u)
    generated = time.perf_counter() - t0
    nightly = u.nightly
    meta = {"capspread_synthetic": "true", "synthetic_generator": f"benchmarks.synthetic v{GENERATOR_VERSION}",
            "synthetic_seed": str(u.seed), "synthetic_universe": u.key}
    files = []
    for dataset, frame in frames.items():
        col = DATE_COLUMN[dataset]
        frame = frame.with_columns(_avail=available_on(dataset, LAGS))
        history = frame.filter(pl.col("_avail") <= u.end)
        tail = frame.filter((pl.col("_avail") > u.end) & (pl.col("_avail") <= nightly))
        groups = [(f"{SYNTHETIC}_{dataset}_{year}.parquet", part, "history")
                  for (year,), part in history.group_by(pl.col(col).dt.year().alias("_y"), maintain_order=True)
                  if part.height] if history.height else []
        groups.sort(key=lambda g: g[0])
        if tail.height:
            groups.append((f"{SYNTHETIC}_{dataset}_nightly_{nightly.isoformat()}.parquet", tail, "nightly"))
        for name, part, role in groups:
            part = part.sort(list(frame.columns[:2]))
            part.drop("_avail").write_parquet(folder / name, compression="zstd", metadata={**meta, "synthetic_role": role})
            files.append({"name": name, "dataset": dataset, "role": role, "rows": part.height,
                          "min_available": part["_avail"].min().isoformat(),
                          "max_available": part["_avail"].max().isoformat(),
                          "bytes": (folder / name).stat().st_size})
    manifest = {"key": u.key, "label": SYNTHETIC, "universe": {**asdict(u), "end": u.end.isoformat()},
                "start": u.start.isoformat(), "end": u.end.isoformat(), "nightly": nightly.isoformat(),
                "generated_seconds": round(generated, 2), "written_seconds": round(time.perf_counter() - t0, 2),
                "rows": {d: f.height for d, f in frames.items()}, "files": files}
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def files_of(manifest: dict, folder: Path, dataset: str, role: str | None = None) -> list[Path]:
    return [folder / f["name"] for f in manifest["files"] if f["dataset"] == dataset and (role is None or f["role"] == role)]


class SyntheticSource:
    """Serves the SYNTHETIC files like a vendor that delivers files: a file whose rows are all
    public in (cursor, as_of] is handed over byte for byte; a file cut by the window is filtered
    and re-encoded (as the sample source does)."""

    name = "synthetic"

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.manifest = json.loads((self.folder / MANIFEST).read_text())

    def fetch(self, dataset: str, as_of: date, cursor: date | None):
        from sources.base import Batch
        from sources.schemas import conform
        from transforms.pit import available_on

        out = []
        for f in self.manifest["files"]:
            if f["dataset"] != dataset:
                continue
            lo, hi = date.fromisoformat(f["min_available"]), date.fromisoformat(f["max_available"])
            if lo > as_of or (cursor is not None and hi <= cursor):
                continue
            path = self.folder / f["name"]
            if hi <= as_of and (cursor is None or lo > cursor):
                payload = path.read_bytes()
                frame = conform(dataset, pl.read_parquet(io.BytesIO(payload)))
            else:
                avail = available_on(dataset, LAGS)
                window = (avail <= as_of) & (avail > cursor) if cursor is not None else avail <= as_of
                frame = conform(dataset, pl.read_parquet(path).filter(window))
                if frame.is_empty():
                    continue
                buf = io.BytesIO()
                frame.write_parquet(buf, compression="zstd")
                payload = buf.getvalue()
            out.append(Batch(source=self.name, dataset=dataset, name=f["name"], payload=payload, format="parquet",
                             frame=frame, cursor=as_of))
        return out


def config_text(u: Universe) -> str:
    """A capspread configuration for the SYNTHETIC universe: four symbols play the indexes and ETFs
    of two size pairs, the two SYNTHETIC funds define the short-interest buckets."""
    lines = ["# SYNTHETIC benchmark configuration (generated by benchmarks.synthetic; not market data)", ""]
    roles = [("index", "small"), ("index", "large"), ("etf", "small"), ("etf", "large")]
    for i, (role, size) in enumerate(roles[: min(4, u.symbols)]):
        lines += ["[[universe]]", f'symbol = "{u.symbol(i)}"', f'name = "{SYNTHETIC} {size} {role} {i}"',
                  f'role = "{role}"', f'size = "{size}"', ""]
    if u.symbols >= 2:
        lines += ["[[pairs]]", f'small = "{u.symbol(0)}"', f'large = "{u.symbol(1)}"', ""]
    if u.symbols >= 4:
        lines += ["[[pairs]]", f'small = "{u.symbol(2)}"', f'large = "{u.symbol(3)}"', ""]
    lines += ["[bucket_funds]", f'{LARGE_FUND} = "large"', f'{SMALL_FUND} = "small"', "",
              "[inflation_regime]", "target = 0.02", "band = 0.005", "reheating_gap = 0.0", "",
              "[publication_lag]", *[f"{k} = {v}" for k, v in LAGS.items()], "",
              "[validation]", "max_daily_move = 0.35", "",
              "[source_priority]",
              'order = ["yahoo", "fred", "bls", "finra", "ishares", "french", "spdji", "sample", "inbox", "stooq"]', ""]
    return "\n".join(lines)


def run(spec: dict) -> dict:
    """Workload ``generate``: write the universe of ``spec`` into ``spec['data']`` (reused when there)."""
    t0 = time.perf_counter()
    u = Universe(symbols=int(spec["symbols"]), years=float(spec["years"]), seed=int(spec["seed"]))
    manifest = write_universe(u, Path(spec["data"]))
    return {"manifest": manifest, "seconds": time.perf_counter() - t0}
