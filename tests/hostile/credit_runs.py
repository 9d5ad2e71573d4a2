"""A small credit job (align, then binning) as ``meshmpc job run --party`` processes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from cluster import HostileCluster

ROWS = 600


def write_job(cluster: HostileCluster, security: str = "honest-majority") -> Path:
    """Each party's CSV (overlapping credit codes), the job file; returns the job file."""
    rng = np.random.default_rng(7)
    lines = []
    for i, party in enumerate(cluster.parties):
        columns = {"credit_code": [f"91330100MA{k:08d}" for k in range(i * 50, i * 50 + ROWS)],
                   f"f_{party}": rng.normal(0, 1, ROWS)}
        label = ""
        if i == 0:
            columns["default_12m"] = (rng.random(ROWS) < 0.3).astype(np.int64)
            label = ", label: default_12m"
        pq.write_table(pa.table(columns), cluster.directory / f"{party}.parquet")
        lines.append(f"  {party}: {{data: {party}.parquet, key: credit_code{label}}}\n")
    job = cluster.directory / "credit.yaml"
    job.write_text(f"name: credit\nsecurity: {security}\nparties:\n" + "".join(lines) +
                   "steps:\n  - {id: align, component: psi.align, params: {protocol: kkrt}}\n"
                   "  - {id: bins, component: ml.binning, after: [align],\n"
                   "     params: {method: quantile, bins: 4}}\n")
    return job


def start_job(cluster: HostileCluster, job: Path) -> None:
    for party in cluster.parties:
        cluster.start_cli(party, ["job", "run", str(job), "--out", "out", "--quiet", "--json"])


def artefacts(cluster: HostileCluster) -> list[Path]:
    """Every file the job wrote under ``out/`` (for the no-partial-output checks)."""
    out = cluster.directory / "out"
    return sorted(p for p in out.rglob("*") if p.is_file()) if out.exists() else []
