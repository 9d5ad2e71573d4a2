"""After a run of the credit pipeline, no raw credit code is readable anywhere it left files.

The reference data holds credit codes (no phone numbers or names); the scan
looks for every code of the generated inputs, and for any phone-shaped number,
in every file under the run's folder except the inputs themselves
(``data/``: each party's own source data, which the run reads and never
writes), in the databases and in the run's console output. Sealed artefacts
are ciphertext; a file that is not sealed is also read as Parquet when it is
one, so compression cannot hide a code from the scan.
"""

from __future__ import annotations

import asyncio
import io
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from meshmpc_credit.datagen import generate
from meshmpc_credit.demo import JOB_FILE

from meshmpc.data import check
from meshmpc.data.vault import MAGICS, Vault
from meshmpc.jobs.artefacts import read_table
from meshmpc.jobs.local import run_job_in_memory
from meshmpc.jobs.spec import read_yaml

PHONE = re.compile(rb"(?<![0-9A-Fa-f.])1[3-9]\d{9}(?![0-9A-Fa-f.])")
"""A mobile number on its own: not the decimals of a float, not a run of a hex digest."""


def reference_codes(data: Path) -> set[bytes]:
    codes: set[bytes] = set()
    for path in data.glob("*.parquet"):
        codes.update(c.encode() for c in pq.read_table(path, columns=["credit_code"])
                     .column(0).to_pylist() if c)
    return codes


def readable_text(path: Path) -> bytes:
    """What a reader of ``path`` sees without a key: its bytes, and its rows if Parquet."""
    data = path.read_bytes()
    if data[:4] in MAGICS:
        return b""  # sealed: AES-GCM ciphertext, nothing to read
    if data[:4] == b"PAR1":
        return data + str(pq.read_table(io.BytesIO(data)).to_pylist()).encode()
    return data


def scan(root: Path, codes: set[bytes], extra: dict[str, bytes]) -> dict[str, int]:
    """{file: number of reference codes or phone numbers readable in it}."""
    texts = {str(p.relative_to(root)): readable_text(p) for p in root.rglob("*")
             if p.is_file() and "data" not in p.relative_to(root).parts[:1]}
    texts.update(extra)
    hits = {}
    for name, text in texts.items():
        found = sum(code in text for code in codes) + len(PHONE.findall(text))
        if found:
            hits[name] = found
    return hits


def test_a_sealed_preloan_run_leaves_no_readable_credit_code(tmp_path: Path) -> None:
    generate(tmp_path / "data", rows=200, seed=3, months=0)
    codes = reference_codes(tmp_path / "data")
    assert len(codes) > 300
    data = tmp_path / "data"  # the bank's quality report (the others' take a minute of charts)
    check(data / "bank.schema.toml", data / "bank.parquet").write(tmp_path / "quality", "bank")
    raw = read_yaml(JOB_FILE)  # the steps that handle identifiers: PSI alignment, PIR screen
    raw["steps"] = [s for s in raw["steps"] if s["component"] in ("psi.align", "credit.screen")]
    for step in raw["steps"]:
        if step["component"] == "credit.screen":
            step["params"]["applicants"] = 60
    keys = tmp_path / "keys"
    results = asyncio.run(run_job_in_memory(raw, tmp_path / "out", base_dir=tmp_path,
                                            vault_dir=keys))
    assert all(isinstance(r, dict) for r in results.values()), results
    assert scan(tmp_path, codes, {}) == {}
    control = tmp_path / "control"  # the same run in clear: the scan does find the codes
    results = asyncio.run(run_job_in_memory(raw, control / "out", base_dir=tmp_path))
    assert "out/preloan/bank/align/aligned.parquet" in scan(control, codes, {})
    aligned = read_table(tmp_path / "out" / "preloan" / "bank" / "align", "aligned",
                         Vault.load(keys / "bank.vault"))  # the owner still reads its own
    assert aligned.num_rows > 0 and set(aligned.column("credit_code").to_pylist()) <= \
        {c.decode() for c in codes}


@pytest.mark.slow
def test_the_demo_leaves_no_readable_credit_code(tmp_path: Path) -> None:
    env_keys = tmp_path / "vault"
    out = tmp_path / "demo"
    run = subprocess.run([sys.executable, "-m", "meshmpc_credit.cli", "demo", "--out", str(out),
                          "--rows", "300", "--applicants", "300", "--epochs", "2", "--quiet"],
                         capture_output=True, timeout=1500,
                         env={**__import__("os").environ, "MESHMPC_VAULT_DIR": str(env_keys)})
    assert run.returncode == 0, run.stderr[-2000:]
    codes = reference_codes(out / "data")
    assert scan(out, codes, {"stdout": run.stdout, "stderr": run.stderr}) == {}
    assert (out / "reports" / "postloan.html").exists()
