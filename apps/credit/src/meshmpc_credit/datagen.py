"""``meshmpc-credit datagen``: the four-party SME reference dataset.

``generate(out_dir, rows, seed)`` writes, for the bank, the government (gov),
the internet-finance company (fin) and the telecom operator (telco):

==========================  ==================================================
``<party>.parquet``         the party's table, keyed by ``credit_code`` (bank:
                            8 features + ``default_12m``, ``days_overdue``;
                            gov 120, fin 64, telco 29 features)
``<party>.schema.toml``     its schema (meshmpc.data format)
``<party>.monthly.parquet`` monthly snapshots after granting (bank applicants)
``<p>.risklist.parquet``    each partner's fraud / blacklist (gov, fin, telco)
``datagen.json``            the manifest: parameters, files, row counts
==========================  ==================================================

(``.csv`` instead of ``.parquet`` with ``fmt="csv"``). Each partner holds
``rows`` rows: a fraction ``overlap`` of the bank's applicants (exact per row
group; default gov 0.9, fin 0.7, telco 0.8) and other firms the bank never
saw. The same seed gives the same files; rows are produced in row groups of
``ROW_GROUP`` so memory stays bounded at any size.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from meshmpc.data import uscc
from meshmpc.data.errors import DataError
from meshmpc_credit.datagen_bank import bank_frame
from meshmpc_credit.datagen_frame import Firms, Frame, draw_firms, seeded
from meshmpc_credit.datagen_gov import gov_frame
from meshmpc_credit.datagen_monthly import bank_monthly, onset_months, partner_monthly, risk_list
from meshmpc_credit.datagen_partners import fin_frame, telco_frame
from meshmpc_credit.datagen_wide import (
    add_leak,
    add_obs_date,
    observation_days,
    parse_features,
    shape_frame,
)
from meshmpc_credit.datagen_writer import BackgroundWrites, TableWriter

PARTIES = ("bank", "gov", "fin", "telco")
PARTNERS = ("gov", "fin", "telco")
DEFAULT_OVERLAP = {"gov": 0.9, "fin": 0.7, "telco": 0.8}
ROW_GROUP = 65_536
MONTHS = 12
_FRAMES = {"gov": gov_frame, "fin": fin_frame, "telco": telco_frame}
_SERIAL_STEP = 0x2545F491  # odd, not a multiple of 31: a bijection on [0, 31**8)
_SERIALS = 31**8


@dataclass
class Chunk:
    """One row group of bank applicants and what the partners need to know of them."""

    index: int
    firms: Firms
    keys: pa.Array
    days_overdue: np.ndarray
    onset: np.ndarray
    obs_days: np.ndarray | None


@dataclass(frozen=True)
class Options:
    """What to generate beyond the row count: feature counts, time columns, snapshots."""

    features: dict[str, int]
    obs_date: bool
    months: int


def firm_keys(firms: Firms) -> pa.Array:
    """Unified social credit codes of ``firms`` (distinct serials give distinct codes)."""
    n = firms.n
    category = np.where(firms.individual, ord("2"), ord("1")).astype(np.uint8)
    return uscc.build(np.full(n, ord("9"), np.uint8), category, firms.division, firms.serial)


def _serials(seed: int, start: int, count: int) -> np.ndarray:
    index = np.arange(start, start + count, dtype=np.int64)
    offset = seed * 1_000_003 % _SERIALS
    return (index * _SERIAL_STEP + offset) % _SERIALS


def _bank_chunk(seed: int, c: int, start: int, count: int, writers: dict[str, TableWriter],
                options: Options) -> Chunk:
    months = options.months
    firms = draw_firms(seeded(seed, 0, c), _serials(seed, start, count))
    keys = firm_keys(firms)
    frame = bank_frame(seeded(seed, 1, c), firms)
    table = frame.table()
    obs = observation_days(seeded(seed, 3, c), count) if options.obs_date else None
    shape_frame(frame, firms, "bank", options.features["bank"], seed)
    if obs is not None:
        add_obs_date(frame, obs)
    writers["bank"].write(frame, keys)
    days = table.column("days_overdue").to_numpy()
    timeline_rng = seeded(seed, 2, c)
    timeline = onset_months(timeline_rng, days)
    if months:
        monthly = bank_monthly(timeline_rng, keys, table.column("loan_amount").to_numpy(),
                               table.column("loan_term_months").to_numpy(), days, timeline,
                               months)
        writers["bank.monthly"].write(monthly)
    return Chunk(c, firms, keys, days, timeline[1], obs)


def _partner_chunk(seed: int, party: str, p: int, chunk: Chunk, rows: int, overlap: float,
                   writers: dict[str, TableWriter], options: Options) -> int:
    """Write one row group of a partner; returns how many bank applicants it holds."""
    n = chunk.firms.n
    shared = np.sort(seeded(seed, 20 + p, chunk.index).permutation(n)[: round(overlap * n)])
    start = rows * (p + 1) + chunk.index * ROW_GROUP
    others = draw_firms(seeded(seed, 30 + p, chunk.index), _serials(seed, start, n - shared.size))
    # shuffled before the features are drawn, so the file does not list the bank's firms first
    order = seeded(seed, 50 + p, chunk.index).permutation(n)
    firms = _concat(chunk.firms.take(shared), others).take(order)
    keys = pa.concat_arrays([chunk.keys.take(pa.array(shared)), firm_keys(others)])
    keys = keys.take(pa.array(order))
    frame = _FRAMES[party](seeded(seed, 40 + p, chunk.index), firms)
    listed = risk_list(party, seeded(seed, 60 + p, chunk.index), keys, firms, frame.table())
    shape_frame(frame, firms, party, options.features[party], seed)
    if party == "fin" and chunk.obs_days is not None:
        _leak(seed, frame, chunk, shared, n, order)
    writers[party].write(frame, keys)
    if listed is not None:
        writers[f"{party}.risklist"].write(listed)
    months = options.months
    if months and shared.size:
        monthly = partner_monthly(party, seeded(seed, 70 + p, chunk.index),
                                  chunk.keys.take(pa.array(shared)), chunk.firms.take(shared),
                                  chunk.onset[shared], chunk.days_overdue[shared] >= 90, months)
        writers[f"{party}.monthly"].write(monthly)
    return int(shared.size)


def _leak(seed: int, frame: Frame, chunk: Chunk, shared: np.ndarray, n: int,
          order: np.ndarray) -> None:
    """The post-application leak feature, in the partner's row order."""
    assert chunk.obs_days is not None
    rng = seeded(seed, 80, chunk.index)
    outsiders = n - shared.size
    applicant = np.concatenate([np.ones(shared.size, bool), np.zeros(outsiders, bool)])[order]
    days = np.concatenate([chunk.days_overdue[shared], np.zeros(outsiders, np.int64)])[order]
    obs = np.concatenate([chunk.obs_days[shared], observation_days(rng, outsiders)])[order]
    add_leak(frame, rng, days, obs, applicant)


def _concat(a: Firms, b: Firms) -> Firms:
    return Firms(**{k: np.concatenate([getattr(a, k), getattr(b, k)]) for k in a.__dict__})


def _chunks(rows: int) -> Iterator[tuple[int, int, int]]:
    for c, start in enumerate(range(0, rows, ROW_GROUP)):
        yield c, start, min(ROW_GROUP, rows - start)


def _overlaps(overlap: float | dict[str, float] | None) -> dict[str, float]:
    if overlap is None:
        return dict(DEFAULT_OVERLAP)
    values = overlap if isinstance(overlap, dict) else dict.fromkeys(PARTNERS, overlap)
    for party, value in values.items():
        if party not in PARTNERS or not 0.0 <= value <= 1.0:
            raise DataError(f"overlap for {party!r} must be a partner in {PARTNERS} "
                            f"and between 0 and 1, got {value!r}")
    return {**DEFAULT_OVERLAP, **values}


def generate(out_dir: Path, rows: int, seed: int, fmt: str = "parquet",
             overlap: float | dict[str, float] | None = None,
             months: int = MONTHS, features: dict[str, int] | None = None,
             obs_date: bool = False) -> dict[str, Path]:
    """Write the reference dataset into ``out_dir``; return every file written.

    Keys: ``bank``, ``gov``, ``fin``, ``telco`` (data files), ``<party>_schema``,
    ``<party>_monthly`` (+ its ``_schema``), ``<partner>_risklist`` (+ ``_schema``)
    and ``manifest``. ``features`` sets each party's feature count (default 8 / 120 /
    64 / 29; see :mod:`meshmpc_credit.datagen_wide`); ``obs_date`` adds the bank's
    ``application_date`` and the internet-finance company's post-application leak
    feature with its recorded-at date.
    """
    if rows < 1:
        raise DataError(f"--rows must be at least 1, got {rows}")
    if fmt not in ("parquet", "csv"):
        raise DataError(f"--format must be parquet or csv, got {fmt!r}")
    shares = _overlaps(overlap)
    options = Options(parse_features(",".join(f"{k}={v}" for k, v in (features or {}).items())),
                      obs_date, months)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [*PARTIES, *(f"{p}.risklist" for p in PARTNERS)]
    names += [f"{p}.monthly" for p in PARTIES] if months else []
    background = BackgroundWrites()
    writers = {name: TableWriter(out_dir, name, fmt, name.split(".")[0], background)
               for name in names}
    shared = dict.fromkeys(PARTNERS, 0)
    files: dict[str, Path] = {}
    try:
        for c, start, count in _chunks(rows):
            chunk = _bank_chunk(seed, c, start, count, writers, options)
            for p, party in enumerate(PARTNERS):
                shared[party] += _partner_chunk(seed, party, p, chunk, rows, shares[party],
                                                writers, options)
        for writer in writers.values():
            files.update(writer.close())
    finally:
        background.close()
    manifest = {"rows": rows, "seed": seed, "format": fmt, "overlap": shares,
                "months": months, "shared_with_bank": shared,
                "features": options.features, "obs_date": obs_date,
                "rows_written": {n: w.rows for n, w in writers.items()},
                "files": {k: v.name for k, v in files.items()}}
    files["manifest"] = out_dir / "datagen.json"
    files["manifest"].write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return files


def parse_overlap(text: str) -> float | dict[str, float]:
    """``0.8`` or ``gov=0.9,fin=0.5`` (partners not named keep their default)."""
    try:
        if "=" not in text:
            return float(text)
        pairs = (item.split("=", 1) for item in text.split(",") if item.strip())
        return {party.strip(): float(value) for party, value in pairs}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number or party=share pairs like gov=0.9,fin=0.5, got {text!r}"
        ) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``datagen`` to ``meshmpc-credit`` (and ``meshmpc credit``)."""
    parser = subparsers.add_parser("datagen", help="write the four-party reference dataset")
    parser.add_argument("--rows", type=int, default=100, help="rows per party (default 100)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--out", type=Path, default=Path("data"), help="output folder")
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--overlap", type=parse_overlap, default=None,
                        help="share of each partner's rows that are bank applicants: one "
                             "number for all, or e.g. gov=0.9,fin=0.5 "
                             "(default gov 0.9, fin 0.7, telco 0.8)")
    parser.add_argument("--months", type=int, default=MONTHS,
                        help="monthly snapshots per applicant (0: none; default 12)")
    parser.add_argument("--features", type=_features_arg, default=None,
                        help="features per party, e.g. bank=8,gov=500,fin=300,telco=192 "
                             "(default 8/120/64/29; extra columns share the signal structure)")
    parser.add_argument("--obs-date", action="store_true",
                        help="add the bank's application_date (observation date) and a "
                             "partner feature recorded after it (a leak as-of joins remove)")
    parser.set_defaults(func=run)


def _features_arg(text: str) -> dict[str, int]:
    try:
        return parse_features(text)
    except DataError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    """Handler of ``datagen``."""
    began = time.perf_counter()
    files = generate(args.out, args.rows, args.seed, args.format, args.overlap, args.months,
                     features=args.features, obs_date=args.obs_date)
    took = time.perf_counter() - began
    for name, path in files.items():
        print(f"{name:24} {path}")
    print(f"{args.rows} rows per party, seed {args.seed}, in {took:.2f} s")
    return 0
