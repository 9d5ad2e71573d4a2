"""The slot writer and record packer in C agree with a plain numpy reference."""

import numpy as np
import pytest

from meshmpc import _core
from meshmpc.crypto.hashing import _flatten


def _reference(db: np.ndarray, table: np.ndarray, slots: np.ndarray, buckets: int, s: int,
               m: int) -> None:
    size = slots.shape[1]
    for slot in np.flatnonzero(table >= 0):
        b, c, j = slot // (m * s), (slot // s) % m, slot % s
        row = b * s * size + j * size
        db[row : row + size, c] = slots[table[slot]]


@pytest.mark.parametrize(("buckets", "s", "m", "size", "threads"),
                         [(1, 4, 7, 5, 1), (3, 2, 11, 3, 2), (4, 5, 64, 9, 3)])
def test_write_slots_matches_reference(buckets: int, s: int, m: int, size: int,
                                       threads: int) -> None:
    rng = np.random.default_rng(size)
    n = buckets * m * s * 3 // 4
    table = np.full(buckets * m * s, -1, np.int64)
    table[rng.choice(table.size, n, replace=False)] = rng.permutation(n)
    content = rng.integers(0, 256, (n, size), dtype=np.uint8)
    base = rng.integers(0, 256, (buckets * s * size, m), dtype=np.uint8)
    want, got = base.copy(), base.copy()
    _reference(want, table, content, buckets, s, m)
    _core.pir_write_slots(got, buckets, s, table, content, threads)
    assert np.array_equal(got, want)


def test_write_slots_refuses_an_item_outside_the_content() -> None:
    db = np.zeros((1 * 2 * 3, 4), np.uint8)
    table = np.full(8, -1, np.int64)
    table[5] = 2
    with pytest.raises(ValueError, match="outside content"):
        _core.pir_write_slots(db, 1, 2, table, np.zeros((2, 3), np.uint8))


def test_pack_bodies_frames_and_pads() -> None:
    records = [b"", b"abc", b"x" * 6]
    data, offsets = _flatten(records)
    out = np.full((3, 8), 0xAA, np.uint8)
    assert _core.pir_pack_bodies_into(data, offsets, out) == -1
    assert [bytes(r) for r in out] == [b"\0" * 8, b"\3\0abc\0\0\0", b"\6\0xxxxxx"]
    assert _core.pir_pack_bodies_into(data, offsets, np.empty((3, 6), np.uint8)) == 2


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_hint_update_matches_reference(threads: int) -> None:
    """H[r] += delta * A[c] mod 2^32, entries repeating rows, on several threads."""
    rng = np.random.default_rng(threads)
    h = rng.integers(0, 2**32, (300, 37), dtype=np.uint32)
    a = rng.integers(0, 2**32, (50, 37), dtype=np.uint32)
    count = 6000  # above the threading threshold
    rows = rng.integers(0, 300, count).astype(np.int64)
    cols = rng.integers(0, 50, count).astype(np.int64)
    delta = rng.integers(-255, 256, count).astype(np.int32)
    want = h.astype(np.uint64)
    np.add.at(want, rows, delta.astype(np.int64)[:, None].astype(np.uint64) * a[cols])
    _core.pir_hint_update(h, a, rows, cols, delta, threads)
    assert np.array_equal(h, (want % 2**32).astype(np.uint32))


@pytest.mark.parametrize("items", [[], [b""], [b"a", b"", b"xyz" * 50], (b"t", b"u")])
def test_as_arrow_flattens_like_the_list(items: list[bytes]) -> None:
    from meshmpc.pir.flat import as_arrow

    data, offsets = _flatten(as_arrow(items))
    want_data, want_offsets = _flatten(list(items))
    assert np.array_equal(offsets, want_offsets)
    assert bytes(data[offsets[0] : offsets[-1]]) == bytes(want_data)


def test_as_arrow_leaves_other_inputs_alone() -> None:
    from meshmpc.pir.flat import as_arrow

    mixed = [b"a", "b"]
    rows = np.zeros((2, 3), np.uint8)
    assert as_arrow(mixed) is mixed and as_arrow(rows) is rows
