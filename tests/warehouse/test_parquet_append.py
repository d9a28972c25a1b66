"""Appending row groups to a Parquet file (``warehouse.parquet_append``), on the real daily prices
of the embedded sample (SPY, IWM, QQQ, DIA, MDY; 1993-2026) written by DuckDB and by pyarrow.

The expectations come from elsewhere: the rows from DuckDB reading the sample file itself, the
offsets and counts from pyarrow's own footer reader, the kept bytes from the old file."""

from __future__ import annotations

import struct
from datetime import date
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from warehouse.parquet_append import (
    CannotAppend,
    append_row_groups,
    read_footer,
    read_struct,
    shared_row_groups,
    write_struct,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sources" / "sample" / "data" / "prices.parquet"
OPTIONS = "FORMAT parquet, COMPRESSION snappy, WRITE_BLOOM_FILTER false, ROW_GROUP_SIZE 4096"


def _write(con, query: str, path: Path, options: str = OPTIONS, run: str = "one") -> Path:
    con.execute(f"COPY ({query}) TO '{path}' ({options}, KV_METADATA {{run: '{run}'}})")
    return path


def _footer_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    length = struct.unpack("<I", data[-8:-4])[0]
    return data[-8 - length:-8]


@pytest.fixture()
def con():
    c = duckdb.connect()
    yield c
    c.close()


def test_the_footer_codec_gives_back_the_same_bytes_and_the_values_pyarrow_reads(con, tmp_path):
    files = [
        _write(con, f"FROM '{SAMPLE}' ORDER BY trade_date", tmp_path / "duckdb.parquet"),
        # with bloom filters, DuckDB's default
        _write(con, f"FROM '{SAMPLE}'", tmp_path / "bloom.parquet", "FORMAT parquet, ROW_GROUP_SIZE 4096"),
        # other types: timestamps with a time zone, booleans, decimals, NULLs, strings
        _write(con, f"SELECT symbol, trade_date, trade_date::TIMESTAMPTZ AS ts, close > open AS up, "
                    f"close::DECIMAL(12, 4) AS d, CASE WHEN volume > 1e8 THEN NULL ELSE volume END AS v "
                    f"FROM '{SAMPLE}'", tmp_path / "types.parquet"),
    ]
    pq.write_table(pq.read_table(SAMPLE), tmp_path / "pyarrow.parquet", row_group_size=5000)
    files.append(tmp_path / "pyarrow.parquet")
    for path in files:
        raw = _footer_bytes(path)
        meta, end = read_struct(raw)
        assert end == len(raw), path.name
        assert bytes(write_struct(meta)) == raw, path.name
        # the decoded values are the ones pyarrow reads from the same footer
        theirs = pq.ParquetFile(path).metadata
        ours = read_footer(path)
        assert ours.meta.get(3) == theirs.num_rows == 36795
        assert len(ours.row_groups) == theirs.num_row_groups > 1
        for i, group in enumerate(ours.row_groups):
            assert group.get(3) == theirs.row_group(i).num_rows
            for j, chunk in enumerate(group.get(1).items):
                assert chunk.get(3).get(9) == theirs.row_group(i).column(j).data_page_offset
                assert chunk.get(3).get(7) == theirs.row_group(i).column(j).total_compressed_size


def test_an_appended_file_holds_the_kept_row_groups_byte_for_byte_and_the_new_rows(con, tmp_path):
    old = _write(con, f"FROM '{SAMPLE}' WHERE trade_date < DATE '2026-01-01' ORDER BY trade_date",
                 tmp_path / "old.parquet")
    meta = pq.ParquetFile(old).metadata
    assert meta.num_row_groups == 9
    keep = 6
    kept_rows = sum(meta.row_group(i).num_rows for i in range(keep))
    cut = meta.row_group(keep).column(1).statistics.min  # the first day of the first group not kept
    assert meta.row_group(keep - 1).column(1).statistics.max < cut  # the groups do not share a day
    # the new rows: the rest of 2025 as before and all of 2026 (which the old file does not hold)
    tail = _write(con, f"FROM '{SAMPLE}' WHERE trade_date >= DATE '{cut}' ORDER BY trade_date",
                  tmp_path / "tail.parquet", run="two")
    out = tmp_path / "out.parquet"
    rows = append_row_groups(old, keep, tail, out)

    assert rows == 36795 == pq.ParquetFile(out).metadata.num_rows
    # the same multiset of rows as the sample itself, read by DuckDB and by pyarrow
    for q in (f"FROM '{out}' EXCEPT ALL FROM '{SAMPLE}'", f"FROM '{SAMPLE}' EXCEPT ALL FROM '{out}'"):
        assert con.execute(f"SELECT count(*) FROM ({q})").fetchall()[0][0] == 0
    assert pq.read_table(out).num_rows == 36795
    # the kept groups come first, in their order, as the very bytes of the old file
    kept_end = max(meta.row_group(keep - 1).column(j).data_page_offset
                   + meta.row_group(keep - 1).column(j).total_compressed_size for j in range(meta.num_columns))
    assert out.read_bytes()[:kept_end] == old.read_bytes()[:kept_end]
    head = con.execute(f"SELECT symbol, trade_date FROM read_parquet('{out}') LIMIT {kept_rows}").fetchall()
    assert head == con.execute(f"SELECT symbol, trade_date FROM read_parquet('{old}') LIMIT {kept_rows}").fetchall()
    # the footer is the new file's: its metadata, and statistics that still prune by day
    assert pq.ParquetFile(out).metadata.metadata == {b"run": b"two"}
    assert con.execute(f"SELECT count(*) FROM '{out}' WHERE trade_date >= DATE '2026-01-01'").fetchall() == \
        con.execute(f"SELECT count(*) FROM '{SAMPLE}' WHERE trade_date >= DATE '2026-01-01'").fetchall()
    groups = con.execute(f"SELECT DISTINCT row_group_id, stats_min_value, stats_max_value FROM parquet_metadata('{out}') "
                         "WHERE path_in_schema = 'trade_date' ORDER BY 1").fetchall()
    days = [(date.fromisoformat(lo), date.fromisoformat(hi)) for _, lo, hi in groups]
    assert all(a[1] <= b[0] for a, b in zip(days, days[1:]))  # still in day order
    assert days[-1][1] == date(2026, 8, 21)


def test_in_place_the_old_file_becomes_what_a_copy_would_be(con, tmp_path):
    old = _write(con, f"FROM '{SAMPLE}' WHERE trade_date < DATE '2026-01-01' ORDER BY trade_date",
                 tmp_path / "old.parquet")
    keep = 6
    cut = pq.ParquetFile(old).metadata.row_group(keep).column(1).statistics.min
    tail = _write(con, f"FROM '{SAMPLE}' WHERE trade_date >= DATE '{cut}' ORDER BY trade_date",
                  tmp_path / "tail.parquet", run="two")
    copied = tmp_path / "copied.parquet"
    append_row_groups(old, keep, tail, copied)
    before = old.stat().st_ino
    assert append_row_groups(old, keep, tail, None) == 36795
    # the same file (inode), now byte for byte the spliced copy: the rows of the sample
    assert old.stat().st_ino == before and old.read_bytes() == copied.read_bytes()
    assert con.execute(f"SELECT count(*) FROM (FROM '{old}' EXCEPT ALL FROM '{SAMPLE}')").fetchall()[0][0] == 0
    # a splice refused in place leaves the file as it was
    other = _write(con, f"SELECT *, 1 AS extra FROM '{SAMPLE}' WHERE trade_date >= DATE '2026-01-01'",
                   tmp_path / "other.parquet")
    with pytest.raises(CannotAppend, match="schema differs"):
        append_row_groups(old, 2, other, None)
    assert old.read_bytes() == copied.read_bytes()


def test_shared_row_groups_counts_the_leading_groups_described_alike(con, tmp_path):
    old = _write(con, f"FROM '{SAMPLE}' WHERE trade_date < DATE '2026-01-01' ORDER BY trade_date",
                 tmp_path / "old.parquet")
    groups = pq.ParquetFile(old).metadata.num_row_groups
    tail = _write(con, f"FROM '{SAMPLE}' WHERE trade_date >= DATE '2026-01-01' ORDER BY trade_date",
                  tmp_path / "tail.parquet", run="two")
    out = tmp_path / "out.parquet"
    append_row_groups(old, 4, tail, out)
    assert shared_row_groups(old, out) == shared_row_groups(out, old) == 4
    assert shared_row_groups(old, old) == groups
    # the same rows written again, in another order: nothing described alike from the first group
    other = _write(con, f"FROM '{SAMPLE}' WHERE trade_date < DATE '2026-01-01' ORDER BY symbol, trade_date",
                   tmp_path / "other.parquet")
    assert shared_row_groups(old, other) == 0


def test_keeping_every_group_and_appending_none(con, tmp_path):
    old = _write(con, f"FROM '{SAMPLE}' ORDER BY trade_date", tmp_path / "old.parquet")
    # no rows, by a filter DuckDB cannot settle from statistics alone (a query it knows to be empty,
    # ``WHERE false`` say, is written with every column OPTIONAL: another schema)
    tail = _write(con, f"FROM '{SAMPLE}' WHERE trade_date > (SELECT max(trade_date) FROM '{SAMPLE}')",
                  tmp_path / "tail.parquet", run="two")
    out = tmp_path / "out.parquet"
    groups = pq.ParquetFile(old).metadata.num_row_groups
    assert append_row_groups(old, groups, tail, out) == 36795
    assert con.execute(f"SELECT count(*) FROM (FROM '{out}' EXCEPT ALL FROM '{SAMPLE}')").fetchall()[0][0] == 0
    assert pq.ParquetFile(out).metadata.metadata == {b"run": b"two"}


def test_what_cannot_be_spliced_safely_is_refused(con, tmp_path):
    old = _write(con, f"FROM '{SAMPLE}' ORDER BY trade_date", tmp_path / "old.parquet")
    tail = _write(con, f"FROM '{SAMPLE}' WHERE trade_date >= DATE '2026-01-01'", tmp_path / "tail.parquet")
    out = tmp_path / "out.parquet"
    bloom = _write(con, f"FROM '{SAMPLE}' ORDER BY trade_date", tmp_path / "bloom.parquet",
                   "FORMAT parquet, ROW_GROUP_SIZE 4096")
    with pytest.raises(CannotAppend, match="bloom filters"):
        append_row_groups(bloom, 2, tail, out)
    other = _write(con, f"SELECT *, 1 AS extra FROM '{SAMPLE}' WHERE trade_date >= DATE '2026-01-01'",
                   tmp_path / "other.parquet")
    with pytest.raises(CannotAppend, match="schema differs"):
        append_row_groups(old, 2, other, out)
    with pytest.raises(CannotAppend, match="cannot keep 99"):
        append_row_groups(old, 99, tail, out)
    not_parquet = tmp_path / "prices.csv"
    not_parquet.write_text("Date,Close\n2024-01-02,472.65\n")
    with pytest.raises(CannotAppend, match="not a Parquet file"):
        append_row_groups(not_parquet, 0, tail, out)
