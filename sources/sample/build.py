"""Build the embedded real-data sample (``sources/sample/data/*.parquet``) from the shared raw files.

    python -m sources.sample.build [--shared ../shared/data] [--out sources/sample/data]

``--shared`` defaults to ``../shared/data`` next to the repository root. Every file is parsed with
``sources.formats`` (the same parsers the inbox uses), so the sample holds exactly what a user
dropping those files into the inbox would load. One Parquet file per dataset, in the schema of
``sources.schemas``, sorted by the dataset's key, zstd-compressed. Provenance of every input is in
``NOTICE`` at the repository root.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

from sources import formats
from sources.schemas import KEYS, SCHEMAS, conform

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SHARED = REPO.parent / "shared" / "data"
DEFAULT_OUT = Path(__file__).resolve().parent / "data"

# dataset → the shared files (relative to --shared) it is built from
INPUTS: dict[str, list[str]] = {
    "prices": [
        "prices/yf_SPY_daily_full.csv",
        "prices/yf_IWM_daily_full.csv",
        "prices/yf_QQQ_daily_full.csv",
        "prices/yf_DIA_daily_full.csv",
        "prices/yf_multiindex_MDY_daily_1995-2025-09.csv",
    ],
    "cpi": [
        "cpi/fred_CPIAUCSL_monthly.csv",
        "cpi/fred_CPILFESL_monthly.csv",
        "cpi/datasets_cpi-us_cpiai.csv",
    ],
    "short_interest": ["short_interest/finra_shrt20210715_excerpt_first71rows.txt"],
    "estimates": ["estimates/sp-500-eps-est_2025-12.xlsx"],
    "holdings": [
        "constituents/iShares_IWM_holdings_2026-05-05.csv",
        "constituents/iShares_IVV_holdings_2026-06-19.csv",
    ],
    "factors": [
        "fama_french/F-F_Research_Data_Factors_daily.CSV",
        "fama_french/F-F_Research_Data_Factors.CSV",
    ],
}


def build_dataset(dataset: str, shared: Path) -> pl.DataFrame:
    frames = []
    for rel in INPUTS[dataset]:
        path = shared / rel
        frames.append(formats.parse(path.read_bytes(), path.name, dataset=dataset))
    frame = pl.concat(frames, how="vertical")
    frame = conform(dataset, frame).sort(list(KEYS[dataset]), nulls_last=True, maintain_order=True)
    if dataset != "holdings":  # iShares repeats tickers legitimately (see sources.formats.holdings)
        dups = frame.filter(pl.struct(list(KEYS[dataset])).is_duplicated())
        if dups.height:
            raise SystemExit(f"{dataset}: duplicate keys across input files:\n{dups.head()}")
    return frame


def build(shared: Path, out: Path) -> dict[str, tuple[int, int]]:
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, tuple[int, int]] = {}
    for dataset in SCHEMAS:
        frame = build_dataset(dataset, shared)
        target = out / f"{dataset}.parquet"
        tmp = target.with_suffix(".parquet.tmp")
        frame.write_parquet(tmp, compression="zstd", compression_level=19, statistics=True)
        tmp.replace(target)
        written[dataset] = (frame.height, target.stat().st_size)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED,
                        help="folder with the raw shared files (default: ../shared/data next to the repo)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: sources/sample/data)")
    args = parser.parse_args(argv)
    shared = args.shared if args.shared.is_absolute() else (Path.cwd() / args.shared)
    if not shared.is_dir():
        print(f"no such folder: {args.shared}", file=sys.stderr)
        return 2
    written = build(shared.resolve(), args.out)
    total = 0
    for dataset, (rows, size) in written.items():
        total += size
        print(f"{dataset:15s} {rows:8d} rows {size / 1024:8.1f} KiB")
    print(f"{'total':15s} {'':8s}      {total / 1024:8.1f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
