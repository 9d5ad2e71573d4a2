"""PRG: known-answer vector, stream semantics, OS seeding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshmpc.crypto import Aes128, Prg
from meshmpc.crypto.aes import available_paths
from meshmpc.crypto.errors import KernelInputError

SEED = bytes(range(16))
# AES-128_SEED(0) || AES-128_SEED(1), counters little-endian (checked with OpenSSL).
FIRST_32_BYTES = "c6a13b37878f5b826f4f8162a1c8d879e37cd363dd7c87a09aff0e3e60e09c82"


@pytest.mark.parametrize("path", available_paths())
def test_known_answer(path: int) -> None:
    assert Prg(SEED, path=path).random_bytes(32).hex() == FIRST_32_BYTES


@pytest.mark.parametrize("path", available_paths())
def test_stream_is_aes_of_counter(path: int) -> None:
    prg = Prg(SEED, path=path)
    first = prg.blocks(1000)
    second = prg.blocks(5)
    expected = Aes128(SEED).counter_blocks(0, 1005, path=0)
    assert np.array_equal(np.vstack([first, second]), expected)
    assert prg.counter == 1005


def test_partial_blocks_consume_whole_blocks() -> None:
    prg = Prg(SEED)
    head = prg.random_bytes(5)
    assert prg.counter == 1
    ref = Aes128(SEED).counter_blocks(0, 2)
    assert head == ref[0, :5].tobytes()
    assert prg.random_bytes(16) == ref[1].tobytes()


def test_bits_and_integers_shapes() -> None:
    prg = Prg(SEED)
    bits = prg.bits(1001)
    assert bits.shape == (1001,) and set(np.unique(bits)) <= {0, 1}
    assert 400 < bits.sum() < 600
    packed = prg.packed_bits(13)
    assert packed.shape == (2,) and packed[1] < 32
    assert prg.uint64(10).dtype == np.uint64


def test_os_seeded_generators_differ() -> None:
    assert Prg().random_bytes(32) != Prg().random_bytes(32)
    parent = Prg(SEED)
    assert parent.fork().random_bytes(16) != Prg(SEED).random_bytes(16)


def test_bad_seed_and_buffer_raise() -> None:
    with pytest.raises(KernelInputError, match="16 bytes"):
        Prg(b"x" * 15)
    with pytest.raises(KernelInputError, match="contiguous"):
        Prg(SEED).fill(np.zeros((4, 4), np.uint8)[:, ::2])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 100), min_size=1, max_size=6))
def test_any_request_sizes_follow_the_keystream(sizes: list[int]) -> None:
    prg = Prg(SEED)
    ref = Aes128(SEED).counter_blocks(0, sum((n + 15) // 16 for n in sizes)).tobytes()
    pos = 0
    for n in sizes:
        assert prg.random_bytes(n) == ref[pos : pos + n]
        pos += (n + 15) // 16 * 16
