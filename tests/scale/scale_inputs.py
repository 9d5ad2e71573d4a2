"""Two small PSI inputs and a runner of both parties' jobs in one process (scale tests)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from meshmpc.net import run_parties
from meshmpc.psi import KeyOptions, PsiJob, run_job
from meshmpc.psi.keys import digest_items
from meshmpc.psi.stream import bucket_ids

COMMON, ONLY_BANK, ONLY_GOV = 2500, 1500, 2000


def write_inputs(directory: Path, seed: int = 1) -> dict[str, Path]:
    """bank and gov CSVs sharing COMMON keys (distinct random hex codes)."""
    rng = random.Random(seed)
    codes = [f"{rng.getrandbits(64):016x}" for _ in range(COMMON + ONLY_BANK + ONLY_GOV)]
    bank = codes[:COMMON + ONLY_BANK]
    gov = codes[:COMMON] + codes[COMMON + ONLY_BANK:]
    rng.shuffle(bank)
    rng.shuffle(gov)
    paths = {"bank": directory / "bank.csv", "gov": directory / "gov.csv"}
    pacsv.write_csv(pa.table({"credit_code": bank, "income": list(range(len(bank)))}),
                    paths["bank"])
    pacsv.write_csv(pa.table({"credit_code": gov, "tax": [len(bank) + i for i in
                                                           range(len(gov))]}), paths["gov"])
    return paths


def run_psi(inputs: dict[str, Path], out: Path, ray: Any = None, **fields: Any) -> dict[str, Any]:
    """Both parties' PSI jobs (kkrt, bucketed) over an in-memory coordinator link."""
    out.mkdir(parents=True, exist_ok=True)
    suffix = fields.pop("suffix", "csv")
    base: dict[str, Any] = {"protocol": "kkrt", "bucket_rows": 400, **fields}
    jobs = {p: PsiJob(input=inputs[p], keys=KeyOptions(("credit_code",)),
                      peers=["gov" if p == "bank" else "bank"], receiver="bank",
                      output=out / f"{p}.{suffix}", workers=0, ray=ray, quiet=True, **base)
            for p in ("bank", "gov")}

    async def party(ctx: Any) -> Any:
        return await run_job(ctx, jobs[ctx.party])

    return run_parties(["bank", "gov"], party)


def read_rows(path: Path) -> list[dict[str, Any]]:
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types={"credit_code": pa.string()})).to_pylist()


def buckets_of(codes: list[str], buckets: int) -> list[int]:
    """The PSI bucket of each key (as the spill computes it)."""
    digests = digest_items(pa.array(codes, pa.string()))
    return [int(b) for b in bucket_ids(np.asarray(digests), buckets)]
