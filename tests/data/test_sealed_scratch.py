"""Chunk-sealed scratch files: exact round trips, bounded memory, and nothing that was
moved, swapped, cut or left unfinished opens."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from meshmpc.data.sealedfile import TAG, SealedReader, SealedWriter
from meshmpc.data.vault import Vault, VaultError, is_sealed

CHUNK = 1024
HEADER = 4 + 8 + 16 + 4 + 12 + 48  # AES: wrapped 32-byte key + tag


def _seal(path: Path, vault: Vault, data: bytes, name: str = "x") -> None:
    with SealedWriter(path, vault, name, chunk=CHUNK) as fh:
        for start in range(0, len(data), 300):  # writes that straddle chunk edges
            fh.write(data[start:start + 300])


def _open(path: Path, vault: Vault, name: str = "x") -> bytes:
    with SealedReader(path, vault, name) as fh:
        return fh.readall()


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 5000])
@pytest.mark.parametrize("suite", ["default", "gm"])
def test_round_trip(tmp_path: Path, size: int, suite: str) -> None:
    vault, data = Vault.ephemeral(suite), os.urandom(size)
    path = tmp_path / "f"
    _seal(path, vault, data)
    assert is_sealed(path) and _open(path, vault) == data
    with SealedReader(path, vault, "x") as fh:  # small reads see the same bytes
        assert b"".join(iter(lambda: fh.read(77), b"")) == data
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    if size >= 16:
        assert data[:16] not in path.read_bytes()


def _chunks(raw: bytes, suite_header: int = HEADER) -> tuple[bytes, list[bytes]]:
    body = raw[suite_header:]
    step = CHUNK + TAG
    return raw[:suite_header], [body[i:i + step] for i in range(0, len(body), step)]


def test_reordered_swapped_or_cut_chunks_do_not_open(tmp_path: Path) -> None:
    vault = Vault.ephemeral()
    a, b = tmp_path / "a", tmp_path / "b"
    _seal(a, vault, os.urandom(4 * CHUNK + 10))
    _seal(b, vault, os.urandom(4 * CHUNK + 10))
    head, chunks = _chunks(a.read_bytes())
    _, other = _chunks(b.read_bytes())
    assert len(chunks) == 5
    forged = {
        "reordered": head + b"".join([chunks[1], chunks[0], *chunks[2:]]),
        "swapped in from another file": head + b"".join([other[0], *chunks[1:]]),
        "cut after a chunk": head + b"".join(chunks[:3]),
        "last chunk dropped": head + b"".join(chunks[:-1]),
        "a chunk repeated": head + b"".join([*chunks[:2], chunks[1], *chunks[2:]]),
    }
    bad = tmp_path / "bad"
    for what, raw in forged.items():
        bad.write_bytes(raw)
        with pytest.raises(VaultError, match="chunk"):
            _open(bad, vault)
        assert what


def test_wrong_name_key_or_unfinished_file_does_not_open(tmp_path: Path) -> None:
    vault = Vault.ephemeral()
    path = tmp_path / "f"
    _seal(path, vault, b"secret" * 1000, name="psi-spill/a/1")
    assert _open(path, vault, "psi-spill/a/1") == b"secret" * 1000
    with pytest.raises(VaultError, match="renamed or sealed for another name"):
        _open(path, vault, "psi-spill/a/2")
    with pytest.raises(VaultError, match="another vault key"):
        _open(path, Vault.ephemeral(), "psi-spill/a/1")
    writer = SealedWriter(path, vault, "n", chunk=CHUNK)
    writer.write(b"x" * 5000)
    writer.abandon()  # what a crash leaves: no final chunk
    with pytest.raises(VaultError, match="never finished"):
        _open(path, vault, "n")


def test_memory_stays_bounded_while_streaming(tmp_path: Path) -> None:
    """Sealing and opening 24 MiB hold a few chunks (1 MiB each), not the file."""
    vault = Vault.ephemeral()
    path = tmp_path / "big"
    piece = os.urandom(1 << 16)
    tracemalloc.start()
    try:
        with vault.sealed_scratch(path).writer() as fh:
            for _ in range(384):
                fh.write(piece)
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        total = 0
        with vault.sealed_scratch(path).reader() as fh:
            while chunk := fh.read(1 << 16):
                total += len(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 384 << 16
    assert write_peak < 6 << 20 and read_peak < 6 << 20, (write_peak, read_peak)  # file: 24


def test_arrow_streams_through_a_sealed_file(tmp_path: Path) -> None:
    table = pa.table({"code": [f"91110108{i:010d}" for i in range(20_000)],
                      "x": np.arange(20_000)})
    scratch = Vault.ephemeral("gm").sealed_scratch(tmp_path / "t.arrow", "t")
    with scratch.writer() as sink, ipc.new_stream(sink, table.schema) as out:
        out.write_table(table)
    assert b"9111010800000" not in (tmp_path / "t.arrow").read_bytes()
    with scratch.reader() as src, ipc.open_stream(src) as reader:
        assert reader.read_all().equals(table)
