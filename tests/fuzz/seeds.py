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


def write_seeds(root: Path) -> None:
    for name, make in SEEDS.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for data in make():
            (folder / f"seed-{hashlib.sha1(data).hexdigest()[:16]}").write_bytes(data)
