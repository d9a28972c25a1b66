"""Source health, written inside the run's transaction: per source and dataset, the newest
observation against the expected cadence, the rows held and FINRA sentinels; and the days where two
sources disagree on a close.

Nothing here scans more than it must on a nightly run: the health rows are plain aggregates (the
sentinel count a second query on the newest day alone), and the disagreements are recomputed only
for the (symbol, day) keys the run loaded into ``raw.prices``, and not at all while every price
payload came from one source.
"""

from __future__ import annotations

from sources.schemas import DATASETS, DATE_COLUMN
from warehouse import db

# days between observations plus publication lag before a series counts as stale
CADENCE_DAYS = {"prices": 4, "short_interest": 25, "cpi": 75, "estimates": 100, "holdings": 10, "factors": 75,
                "company_estimates": 4, "rates": 7}
EVENT_RANK = {"partial": 1, "stale": 2, "ended": 3}
EVENT_WORDS = {"ended": "has ended", "stale": "is stale", "partial": "was fetched only in part"}

# a run under this profile reloads raw from landing under the journals' run ids: rebuild everything
FULL_REBUILD_PROFILES = ("replay",)


def observed(con, as_of) -> list[tuple]:
    """(source, dataset, newest observation, rows held, sentinels at the newest day) for the rows
    public by ``as_of``; sentinels are counted for short interest only (else None)."""
    found = []
    for dataset in DATASETS:
        column = DATE_COLUMN[dataset]
        # tables that keep vintages count the latest vintage public by then, once per key
        rows = f"({db.core_as_of_sql(dataset)})" if dataset in db.VINTAGED else \
            f"(SELECT * FROM core.{db.CORE_TABLE[dataset]} WHERE available_on <= $as_of)"
        for source, newest, held in con.execute(
            f"SELECT source, max({column}), count(*) FROM {rows} GROUP BY source", {"as_of": as_of},
        ).fetchall():
            sentinels = None
            if dataset == "short_interest":
                sentinels = con.execute(
                    f"SELECT count(*) FROM {rows} WHERE source IS NOT DISTINCT FROM $source AND {column} = $newest "
                    "AND days_to_cover IS NULL AND avg_daily_volume IS NOT NULL",
                    {"as_of": as_of, "source": source, "newest": newest},
                ).fetchall()[0][0]
            found.append((source, dataset, newest, held, sentinels))
    return found


def update_disagreements(con, run_id: str, as_of, *, full: bool = False) -> bool:
    """Recompute ``meta.source_disagreements`` for the keys run ``run_id`` loaded into raw.prices
    (every key with ``full``). A run that loaded no price rows leaves the table alone. Returns
    whether anything was recomputed."""
    if not full and not con.execute(
            "SELECT count(*) FROM (SELECT 1 FROM raw.prices WHERE _run_id = ? LIMIT 1)", [run_id]).fetchall()[0][0]:
        return False
    if not full and not con.execute(
            "SELECT count(*) FROM (SELECT 1 FROM raw.prices WHERE _run_id <> ? LIMIT 1)", [run_id]).fetchall()[0][0]:
        full = True  # the run loaded every raw row (a first load): no need to pick its keys out
    tags = con.execute(
        "SELECT count(DISTINCT source || CASE WHEN source = 'inbox' THEN ':' || coalesce(format, '') ELSE '' END) "
        "FROM meta.landing_files WHERE dataset = 'prices'").fetchall()[0][0]
    if tags < 2:  # every price row came from one source (inbox files count by format): nothing to pair
        con.execute("DELETE FROM meta.source_disagreements WHERE dataset = 'prices'").fetchall()
        return True
    params = {"as_of": as_of, "run_id": run_id, "full": full}
    delete, insert = (s.strip() for s in db.sql_file("meta_source_disagreements.sql").split(";\n") if s.strip())
    con.execute(delete, {k: v for k, v in params.items() if f"${k}" in delete}).fetchall()
    con.execute(insert, {k: v for k, v in params.items() if f"${k}" in insert}).fetchall()
    return True


def source_health(con, run, *, full: bool | None = None) -> None:
    """Per source and dataset: newest observation against the expected cadence (stale is flagged),
    rows held, FINRA sentinels at the newest settlement; and cross-source disagreements (of the
    keys this run loaded; all of them with ``full``, the default for a replay)."""
    if full is None:
        full = getattr(run, "profile", None) in FULL_REBUILD_PROFILES
    rows = []
    for source, dataset, newest, held, sentinels in observed(con, run.as_of):
        stale = (run.as_of - newest).days if newest else None
        expected = CADENCE_DAYS[dataset]
        status = "stale" if stale is not None and stale > expected else "ok"
        message = f"newest observation {newest}"
        if status == "stale":
            message += f", {stale} days before {run.as_of} (expected every {expected} days or less)"
            run.health_notes.append(f"{source}/{dataset} is stale: {message}")
        if sentinels:
            message += f"; {sentinels} FINRA 999.99 sentinels at the newest settlement (stored as NULL)"
        rows.append((source, dataset, status, newest, stale, message, expected, sentinels, held))
    previous = {(r[0], r[1]): r[2] for r in con.execute(
        "SELECT source, dataset, last_success_at FROM meta.source_health").fetchall()}
    failed = {(s, d): why for s, d, why in getattr(run, "source_failures", [])}
    events: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for s, d, st, why in getattr(run, "source_events", []):
        events.setdefault((s, d), []).append((st, why))
    con.execute("DELETE FROM meta.source_health")
    for (s, d), said in events.items():
        if not any(r[0] == s and r[1] == d for r in rows):
            rows.append((s, d, "ok", None, None, "", CADENCE_DAYS[d], None, 0))
        for st, why in said:
            run.health_notes.append(f"{s}/{d} {EVENT_WORDS[st]}: {why}")
    for (source, dataset), why in failed.items():
        if not any(r[0] == source and r[1] == dataset for r in rows):
            rows.append((source, dataset, "failed", None, None, "", CADENCE_DAYS[dataset], None, 0))
        run.health_notes.append(f"{source}/{dataset} could not be fetched: {why}")
    for source, dataset, status, newest, stale, message, expected, sentinels, held in rows:
        last_success = None if (source, dataset) in failed else "now"
        if (source, dataset) in failed:
            status = "failed"
            message = f"fetch failed: {failed[(source, dataset)]}" + (f"; {message}" if message else "")
        elif (source, dataset) in events:
            said = sorted(events[(source, dataset)], key=lambda e: EVENT_RANK[e[0]])
            if said[-1][0] in ("ended", "stale"):
                status = said[-1][0]
            message = "; ".join(f"{st}: {w}" for st, w in said) + (f"; {message}" if message else "")
        con.execute(
            "INSERT INTO meta.source_health BY NAME SELECT ? AS source, ? AS dataset, ? AS status, "
            "CASE WHEN ? THEN now() ELSE ?::TIMESTAMPTZ END AS last_success_at, ? AS newest_observation, "
            "? AS staleness_days, ? AS message, now() AS checked_at, ? AS run_id, ? AS expected_every_days, "
            "? AS sentinel_count, ? AS rows_held",
            [source, dataset, status, last_success is not None, previous.get((source, dataset)), newest, stale,
             message, run.run_id, expected, sentinels, held],
        )
    update_disagreements(con, run.run_id, run.as_of, full=full)
    found = con.execute("SELECT count(*), count(DISTINCT symbol) FROM meta.source_disagreements").fetchall()[0]
    if found[0]:
        run.health_notes.append(
            f"{found[0]} days where two sources disagree on a close by more than a cent "
            f"({found[1]} symbols): see meta.source_disagreements")
