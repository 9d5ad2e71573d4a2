"""Reference loan-level data of several banks for fund-flow monitoring (synthetic).

Each bank's file has one row per loan: ``loan_id``, ``region`` (GB/T 2260 province code),
``month`` (YYYY-MM of drawdown), ``amount_fen``, and four violation flags
(``to_real_estate``, ``to_securities``, ``back_to_borrower``, ``off_purpose``). Violation
rates differ by region, bank and month (a planted rise in the real-estate diversion of
three regions in the second half-year), so the joint statistics show what no single bank
sees. Synthetic data: numpy's generator is used on purpose (never for protocol randomness).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from meshmpc_supervision.grid import INSTITUTION_TYPES, REGIONS, default_months

FLAGS = ("to_real_estate", "to_securities", "back_to_borrower", "off_purpose")
HOT_REGIONS = ("44", "32", "51")
BANK_TYPES = tuple(INSTITUTION_TYPES)


def bank_table(bank: int, loans: int, seed: int = 7) -> pa.Table:
    """One bank's loans (deterministic in ``bank`` and ``seed``)."""
    rng = np.random.default_rng([seed, bank])
    codes = np.array(list(REGIONS))
    weights = rng.dirichlet(np.full(len(codes), 2.0))
    region = rng.choice(len(codes), size=loans, p=weights)
    month = rng.integers(0, 12, size=loans)
    amount = np.round(rng.lognormal(np.log(5e7), 1.0, size=loans)).astype(np.int64)
    base = 0.01 + 0.01 * (bank % 3)
    hot = np.isin(codes[region], HOT_REGIONS) & (month >= 6)
    columns: dict[str, pa.Array] = {
        "loan_id": pa.array(np.char.add(f"B{bank}-", np.char.zfill(
            np.arange(loans).astype(str), 8))),
        "region": pa.array(codes[region]),
        "month": pa.array(np.array(default_months())[month]),
        "amount_fen": pa.array(amount),
    }
    for k, flag in enumerate(FLAGS):
        rate = base * (1 + 0.5 * k) + (0.03 * hot if flag == "to_real_estate" else 0)
        columns[flag] = pa.array(rng.random(loans) < rate)
    return pa.table(columns)


def write_banks(out: Path, banks: int, loans: int, seed: int = 7) -> dict[str, Path]:
    """Write ``bank1.parquet`` ... into ``out``; returns {party: path}."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for b in range(1, banks + 1):
        path = out / f"bank{b}.parquet"
        pq.write_table(bank_table(b, loans, seed), path)
        paths[f"bank{b}"] = path
    return paths


def bank_type(bank: int) -> str:
    """The institution type the reference data gives bank number ``bank``."""
    return BANK_TYPES[((bank - 1) // 2) % len(BANK_TYPES)]  # two banks of each type


def job_file(out: Path, paths: dict[str, Path], types: dict[str, str] | None = None,
             **params: object) -> Path:
    """A fund-flow job over ``paths`` with the regulator ``pboc`` (institution types from
    ``types``, else the reference data's)."""
    import yaml

    parties: dict[str, dict[str, object]] = {"pboc": {}}
    for number, (party, path) in enumerate(paths.items(), start=1):
        kind = (types or {}).get(party) or bank_type(number)
        parties[party] = {"data": str(path.resolve()), "type": kind}  # the job file's folder
        # is where relative paths resolve: absolute ones stay right wherever --out points
    spec = {"name": "fund-flow-monitoring", "parties": parties,
            "steps": [{"id": "fundflow", "component": "supervision.fundflow",
                       "params": {"regulator": "pboc", **params}}]}
    path = out / "fundflow.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False))
    return path


def registry_links(links: int, seed: int = 7) -> tuple[pa.Table, np.ndarray]:
    """A public registry graph with about ``links`` edges: groups of related firms (sizes
    geometric, mean 4), each group a random tree. Returns (links table a, b; firm codes)."""
    rng = np.random.default_rng([seed, 1000])
    sizes = np.zeros(0, dtype=np.int64)
    while sizes.size == 0 or (sizes - 1).sum() < links:
        sizes = np.concatenate([sizes, 1 + rng.geometric(1 / 3, size=max(links // 3, 16))])
    sizes = sizes[: int(np.searchsorted(np.cumsum(sizes - 1), links)) + 1]
    firms = int(sizes.sum())
    codes = np.char.add("91", np.char.zfill(
        rng.choice(10**12, size=firms, replace=False).astype(str), 16))
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    position = np.arange(firms) - starts
    child = np.flatnonzero(position > 0)
    parent = starts[child] + np.floor(rng.random(child.size) * position[child]).astype(np.int64)
    return pa.table({"a": codes[child], "b": codes[parent]}), codes


def write_related(out: Path, banks: int, borrowers: int, links: int, seed: int = 7
                  ) -> tuple[Path, dict[str, Path]]:
    """The registry (``registry.parquet``) and each bank's borrowers (``credit_code``,
    ``exposure_fen``; a tenth of them firms without any registry link)."""
    out.mkdir(parents=True, exist_ok=True)
    table, codes = registry_links(links, seed)
    registry = out / "registry.parquet"
    pq.write_table(table, registry)
    paths = {}
    for b in range(1, banks + 1):
        rng = np.random.default_rng([seed, 2000 + b])
        linked = codes[rng.choice(codes.size, size=borrowers - borrowers // 10, replace=False)]
        loose = np.char.add("92", np.char.zfill(
            rng.choice(10**9, size=borrowers // 10, replace=False).astype(str), 16))
        exposure = np.round(rng.lognormal(np.log(2e8), 1.2, size=borrowers)).astype(np.int64)
        path = out / f"bank{b}_borrowers.parquet"
        pq.write_table(pa.table({"credit_code": np.concatenate([linked, loose]),
                                 "exposure_fen": exposure}), path)
        paths[f"bank{b}"] = path
    return registry, paths


def related_job_file(out: Path, registry: Path, paths: dict[str, Path], **params: object
                     ) -> Path:
    """A related-party job over ``paths`` with the regulator ``pboc``."""
    import yaml

    parties: dict[str, dict[str, object]] = {"pboc": {}}
    parties.update({party: {"data": str(path.resolve())} for party, path in paths.items()})
    spec = {"name": "related-party-exposure", "parties": parties,
            "steps": [{"id": "related", "component": "supervision.related",
                       "params": {"regulator": "pboc", "registry": str(registry.resolve()),
                                  **params}}]}
    path = out / "related.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False))
    return path


def write_green(out: Path, banks: int, firms: int, loans: int, year: int = 2025,
                seed: int = 7) -> tuple[Path, Path, dict[str, Path]]:
    """The public firm list (``firms.parquet``), the government's carbon intensities
    (``gov_carbon.parquet``: nine firms in ten covered) and each bank's loans of ``year``
    and the year before (``credit_code``, ``year``, ``amount_fen``, ``green``, ``npl``).
    Banks differ on purpose (green share, growth, NPL, how carbon-heavy their green
    borrowers are), so the ranking has something to show."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 3000])
    codes = np.char.add("91", np.char.zfill(
        rng.choice(10**12, size=firms, replace=False).astype(str), 16))
    intensity = np.rint(rng.lognormal(np.log(500), 0.6, size=firms)).astype(np.int64)
    registry = out / "firms.parquet"
    pq.write_table(pa.table({"credit_code": codes}), registry)
    covered = rng.random(firms) < 0.9
    gov = out / "gov_carbon.parquet"
    pq.write_table(pa.table({"credit_code": codes[covered],
                             "carbon_kg_per_10k_yuan": np.minimum(intensity[covered], 99_999)}),
                   gov)
    order = np.argsort(intensity)  # cleaner firms first
    paths = {}
    for b in range(1, banks + 1):
        r = np.random.default_rng([seed, 3000 + b])
        year_of = np.where(r.random(loans) < 0.55, year, year - 1)
        share = 0.08 + 0.06 * ((b * 7) % banks) / max(banks - 1, 1) * 4
        growth = 0.6 + 0.15 * (b % 4)
        green = r.random(loans) < np.where(year_of == year, share * growth, share)
        tilt = (b % banks) / banks  # which part of the intensity range its borrowers are in
        pick = np.clip(r.normal(tilt, 0.25, size=loans), 0, 0.999)
        borrower = order[(pick * firms).astype(np.int64)]
        amount = np.round(r.lognormal(np.log(3e8), 1.0, size=loans)).astype(np.int64)
        npl = r.random(loans) < np.where(green, 0.004 + 0.004 * (b % 3), 0.02)
        path = out / f"bank{b}_loans.parquet"
        pq.write_table(pa.table({"credit_code": codes[borrower], "year": year_of,
                                 "amount_fen": amount, "green": green, "npl": npl}), path)
        paths[f"bank{b}"] = path
    return registry, gov, paths


def green_job_file(out: Path, firms: Path, gov: Path, paths: dict[str, Path], year: int = 2025,
                   **params: object) -> Path:
    """A green-finance job over ``paths`` with the regulator ``pboc`` and the government's
    environmental data at ``gov``."""
    import yaml

    parties: dict[str, dict[str, object]] = {"pboc": {}, "gov": {"data": str(gov.resolve())}}
    parties.update({party: {"data": str(path.resolve())} for party, path in paths.items()})
    spec = {"name": "green-finance-evaluation", "parties": parties,
            "steps": [{"id": "green", "component": "supervision.green",
                       "params": {"regulator": "pboc", "government": "gov", "year": year,
                                  "firms": str(firms.resolve()), **params}}]}
    path = out / "green.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False))
    return path
