"""Seed inputs for each target: well-formed examples the fuzzer mutates from."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from meshmpc.net import codec, framing
from meshmpc.net.keys import IdentityKey
from meshmpc.net.local import make_local_cluster
from meshmpc.net.secure import pack_hello


def _records(*items: tuple[int, bytes]) -> bytes:
    return b"".join(framing.pack_header(len(b), i, t) + b for i, (t, b) in enumerate(items))


def _codec() -> Iterator[bytes]:
    yield codec.pack(["tag", 0, {"a": [1, 2.5, None, True, "x", b"y"]}])
    yield codec.pack(["t", 0, np.arange(6, dtype=np.int32).reshape(2, 3)])
    yield codec.pack(["big", codec.KIND_RAW_ARRAY, ["<u8", [100_000], 800_000]])
    yield codec.pack(["m", 0, 1]) + codec.pack(["n", 0, [np.float64(1.5), -3]])


def _record_layer() -> Iterator[bytes]:
    batch = codec.pack(["t", 0, "hello"]) + codec.pack(["u", 0, [1, 2]])
    yield b"\x00" + _records((framing.BATCH, batch), (framing.CLOSE, b""))
    raw = codec.pack(["a", codec.KIND_RAW_ARRAY, ["<u1", [100], 100]])
    yield b"\x01" + _records((framing.BATCH, raw), (framing.CHUNK, bytes(60) + bytes(16)),
                             (framing.CHUNK, bytes(40) + bytes(16)))
    blob = codec.pack(["b", 0, list(range(50))])
    announce = codec.pack(["b", codec.KIND_PACKED_BLOB, len(blob)])
    yield b"\x02" + _records((framing.BATCH, announce), (framing.CHUNK, blob + bytes(16)))
    yield b"\x03" + _records((framing.ABORT, b"ValueError: bad row 3"))


def _handshake() -> Iterator[bytes]:
    hello = pack_hello("gov", b"\x07" * 32, bytes(32))
    yield hello
    yield _records((framing.HELLO, hello), (framing.AUTH, bytes(64)))
    yield _records((framing.HELLO, pack_hello("mallory", bytes(32), bytes(32))))


def _frame_reader() -> Iterator[bytes]:
    yield b"\x00" + _records((framing.BATCH, b"abc"), (framing.CHUNK, bytes(300)))
    yield b"\x01" + _records((framing.HELLO, bytes(100)), (framing.AUTH, bytes(64)))


def _cluster_config() -> Iterator[bytes]:
    config, _ = make_local_cluster(["bank", "gov", "fin"])
    yield config.to_toml().encode()
    k1, k2 = (IdentityKey.generate(p).public_b64 for p in "ab")
    yield (f'[cluster]\nid = "c"\nmax_handshakes = 8\n[cluster.wan]\nlatency_ms = 5\n'
           f'[[parties]]\nid = "a"\naddress = "h:1"\nlisten = "0.0.0.0:1"\npublic_key = "{k1}"\n'
           f'[[parties]]\nid = "b"\naddress = "[::1]:2"\npublic_key = "{k2}"\n').encode()


SEEDS = {"codec": _codec, "record_layer": _record_layer, "handshake": _handshake,
         "frame_reader": _frame_reader, "cluster_config": _cluster_config}


def write_seeds(root: Path, only: list[str] | None = None) -> None:
    for name, make in SEEDS.items():
        if only and name not in only:
            continue
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for data in make():
            (folder / f"seed-{hashlib.sha1(data).hexdigest()[:16]}").write_bytes(data)


def _schema() -> Iterator[bytes]:
    yield (b'[dataset]\nname = "bank"\nkey = ["credit_code"]\nparty = "bank"\n'
           b'encoding = "utf-8"\n[[columns]]\nname = "credit_code"\ntype = "string"\n'
           b'format = "uscc"\nnullable = false\nsensitivity = "identifier"\n'
           b'[[columns]]\nname = "income"\ntype = "float"\nmin = 0\nmax = 1e9\n'
           b'unit = "CNY"\nmax_missing = 0.1\n[[columns]]\nname = "sector"\n'
           b'type = "category"\ncategories = ["A", "B"]\n')


def _job_spec() -> Iterator[bytes]:
    jobs = Path(__file__).resolve().parents[2] / "apps/credit/src/meshmpc_credit/jobs"
    for path in sorted(jobs.glob("*.yaml")):
        yield path.read_bytes()
    yield (b"name: tiny\nparties:\n  bank: {data: bank.csv, key: credit_code, label: y}\n"
           b"  gov: {data: gov.csv, key: credit_code}\nsteps:\n  - id: align\n"
           b"    component: psi.align\n  - id: fit\n    component: ml.logistic\n"
           b"    after: [align]\n    params: {epochs: 2}\n")


def _loaders() -> Iterator[bytes]:
    import sqlite3
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet as pq
    from targets.loaders import KINDS

    csv = "credit_code,income\n91330100MA00000001,12.5\n91330100MA00000002,\n"
    table = pa.table({"credit_code": ["91330100MA00000001", "x"], "income": [1.5, None]})
    with tempfile.TemporaryDirectory() as tmp:
        pq.write_table(table, f"{tmp}/t.parquet")
        parquet = Path(f"{tmp}/t.parquet").read_bytes()
        db = sqlite3.connect(f"{tmp}/t.db")
        db.execute("CREATE TABLE firms (credit_code TEXT, income REAL)")
        db.executemany("INSERT INTO firms VALUES (?, ?)", [("a", 1.0), ("b", None)])
        db.commit()
        db.close()
        sqlite = Path(f"{tmp}/t.db").read_bytes()
    for i, (name, _, options) in enumerate(KINDS):
        if name.endswith(".parquet"):
            body = parquet
        elif name.endswith(".db"):
            body = sqlite
        elif name.endswith(".tsv"):
            body = csv.replace(",", "\t").encode()
        else:
            body = csv.encode(options.get("encoding", "utf-8"))
        yield bytes([i]) + body
    yield b"\x00credit_code,income\n\"91330100MA0000000\n1,2\n"  # an unclosed quote


def _psi_messages() -> Iterator[bytes]:
    from targets import psi_messages as psi
    from targets._peerfix import encode, record

    for index, (protocol, parties, receiver, party, reveal) in enumerate(psi.SCENARIOS):
        fns = {p: psi.job(protocol, parties, receiver, p, reveal) for p in parties}
        yield bytes([index]) + encode(record(parties, fns)[party])


def _pir_messages() -> Iterator[bytes]:
    from targets import pir_messages as pir
    from targets._peerfix import encode, record

    got = record(pir.PARTIES, pir.ROLES)
    for index, party in enumerate(pir.PARTIES):
        yield bytes([index]) + encode(got[party])


SEEDS.update({"schema": _schema, "job_spec": _job_spec, "loaders": _loaders,
              "psi_messages": _psi_messages, "pir_messages": _pir_messages})
