"""Settings: the home directory, the configuration file and the universe it declares."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from functools import cached_property
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "config" / "capspread.toml"


@dataclass(frozen=True)
class Symbol:
    symbol: str
    name: str
    role: str  # "index" | "etf"
    size: str  # "small" | "mid" | "large"


@dataclass(frozen=True)
class Pair:
    small: str
    large: str

    @property
    def name(self) -> str:
        return f"{self.small}/{self.large}"


@dataclass(frozen=True)
class Config:
    universe: tuple[Symbol, ...]
    pairs: tuple[Pair, ...]
    bucket_funds: dict[str, str]
    inflation_regime: dict[str, float]
    publication_lag: dict[str, int]
    validation: dict[str, float]
    source_priority: tuple[str, ...] = ()
    path: Path = field(default=DEFAULT_CONFIG)
    consensus: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> "Config":
        path = Path(path or os.environ.get("CAPSPREAD_CONFIG") or DEFAULT_CONFIG)
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
        try:
            config = cls(
                universe=tuple(Symbol(**s) for s in raw["universe"]),
                pairs=tuple(Pair(**p) for p in raw.get("pairs", [])),
                bucket_funds=dict(raw.get("bucket_funds", {})),
                inflation_regime=dict(raw.get("inflation_regime", {})),
                publication_lag=dict(raw.get("publication_lag", {})),
                validation=dict(raw.get("validation", {})),
                source_priority=tuple(raw.get("source_priority", {}).get("order", ())),
                path=path,
                consensus=dict(raw.get("consensus", {})),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{path}: invalid configuration ({exc})") from exc
        seen: set[str] = set()
        for s in config.universe:
            if s.symbol in seen:  # each symbol is one row per day in the marts
                raise ValueError(f"{path}: invalid configuration ([[universe]] lists {s.symbol!r} twice; "
                                 f"expected each symbol once)")
            seen.add(s.symbol)
        return config

    def symbol_names(self) -> dict[str, str]:
        return {s.symbol: s.name for s in self.universe}


@dataclass(frozen=True)
class Home:
    """The directory layout of contract §1 under CAPSPREAD_HOME."""

    root: Path

    @classmethod
    def from_env(cls, root: str | Path | None = None) -> "Home":
        root = root or os.environ.get("CAPSPREAD_HOME") or (REPO_ROOT / "data")
        return cls(Path(root).resolve())

    @cached_property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @cached_property
    def landing(self) -> Path:
        return self.root / "landing"

    @cached_property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @cached_property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @cached_property
    def published(self) -> Path:
        return self.root / "published"

    @cached_property
    def snapshot(self) -> Path:
        return self.published / "capspread.duckdb"

    @cached_property
    def docs(self) -> Path:
        return self.root / "docs"

    @cached_property
    def reports(self) -> Path:
        return self.root / "reports"

    def ensure(self) -> "Home":
        for p in (self.inbox, self.landing, self.quarantine, self.published, self.docs, self.reports):
            p.mkdir(parents=True, exist_ok=True)
        return self


def known_at_for(as_of: date | None, now: datetime | None = None) -> datetime:
    """The ``known_at`` stamp of a run: the evening (22:00 UTC, after the US close) of its as-of
    date, or the wall clock when the run is for today."""
    now = now or datetime.now(timezone.utc)
    if as_of is None or as_of >= now.date():
        return now.replace(microsecond=0)
    return datetime.combine(as_of, time(22, 0), tzinfo=timezone.utc)
