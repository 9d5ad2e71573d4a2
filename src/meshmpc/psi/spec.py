"""What a PSI job is (:class:`PsiJob`) and what a party reports (:class:`PsiSummary`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshmpc.data.vault import Vault
from meshmpc.errors import note_stage
from meshmpc.psi.align import Mode
from meshmpc.psi.common import Reveal
from meshmpc.psi.keys import KeyOptions, KeyReport
from meshmpc.scale.options import RayOptions

DEFAULT_BUCKET_ROWS = 1 << 21
PROTOCOL_VERSIONS = {"rr22": 2}
"""Wire version per protocol (1 when absent), agreed before any protocol message:
rr22 2 = H_out by fixed-key AES (1 was BLAKE2b; the two never match each other)."""


@dataclass
class PsiJob:
    """One party's PSI job; every field except paths and workers must match its peers'."""

    input: Path | str
    """A file path, or a database URL such as ``sqlite:///bank.db?table=apps``."""
    keys: KeyOptions
    peers: list[str]
    receiver: str | None = None
    output: Path | None = None
    payload: list[str] | None = None
    protocol: str = "ecdh"
    reveal: Reveal = "all"
    mode: Mode = "inner"
    workers: int | None = None
    cache_dir: Path | None = None
    bucket_rows: int = DEFAULT_BUCKET_ROWS
    progress: bool = False
    schema: Path | None = None
    """Schema to check the input against first (default: ``<name>.schema.toml`` beside it)."""
    validate: bool = True
    encoding: str | None = None
    """Text encoding of a CSV input (default: UTF-8, or the schema's)."""
    delimiter: str | None = None
    """CSV delimiter (default: tab for .tsv, else comma)."""
    row_number_column: str | None = None
    """Add the input's 1-based row number to the output under this name."""
    quiet: bool = False
    """No warnings about dropped rows on stderr."""
    vault: Vault | None = None
    """Seals the job's scratch files and caches (never sent, never agreed). Without one,
    bucket files are sealed under a key only this process holds and the unbalanced-PSI
    caches under the party's local vault (``$MESHMPC_VAULT_DIR/<party>.vault``)."""
    ray: RayOptions | None = None
    """Run the buckets on this party's Ray cluster (:mod:`meshmpc.psi.scaled`); None: here."""
    seal_output: bool = False
    """Seal the output file too (a caller that reads it back itself, like ``psi.align``;
    :func:`meshmpc.psi.io.read_sealed_table`)."""

    def agreement(self, parties: list[str]) -> dict[str, Any]:
        return {
            "protocol": self.protocol, "receiver": receiver_of(self, parties),
            "reveal": self.reveal, "bucket_rows": self.bucket_rows,
            "mode": self.mode, "parties": parties, "validate": self.validate,
            "scale_out": self.ray is not None,
            "protocol_version": PROTOCOL_VERSIONS.get(self.protocol, 1),
            **self.keys.agreement(),
        }


@dataclass
class PsiSummary:
    """What a party reports after a job: sizes, intersection, output, timings, traffic."""

    party: str
    rows: int
    keys_used: int
    report: KeyReport
    intersection: int | None
    output: str | None
    output_rows: int
    phases: dict[str, float] = field(default_factory=dict)
    bytes_sent: int = 0
    bytes_received: int = 0
    scale: dict[str, Any] | None = None
    """Workers, attempts, retries and worker memory of a run on Ray (None: one process)."""


@contextmanager
def phase_timer(phases: dict[str, float], name: str) -> Iterator[None]:
    """Record the phase's wall time under ``name`` and this process's CPU time (every
    thread) under ``<name>.cpu``; a failure inside is noted with the phase's name."""
    start, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    except BaseException as exc:
        note_stage(exc, "phase", f"psi {name}")
        raise
    phases[name] = round(time.perf_counter() - start, 4)
    phases[f"{name}.cpu"] = round(time.process_time() - cpu, 4)


def receiver_of(job: PsiJob, parties: list[str]) -> str:
    """The designated receiver: as configured, else the first participant in cluster order."""
    return job.receiver or parties[0]


