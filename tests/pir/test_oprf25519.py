"""The PIR OPRF on Curve25519: the server's X25519 bulk evaluation equals the client's
blinded evaluation on edwards25519; hostile points are refused."""

import ctypes

import numpy as np
import pytest

from meshmpc.crypto.oprf import OprfError
from meshmpc.crypto.sodium import library
from meshmpc.pir import oprf25519 as ox

P = 2**255 - 19
A = 486662


def _u(row: np.ndarray) -> int:
    return int.from_bytes(row.tobytes(), "little")


@pytest.mark.parametrize("seed", range(4))
def test_bulk_equals_blinded_for_random_keys_and_items(seed: int) -> None:
    rng = np.random.default_rng(seed)
    key = ox.PirOprfKey.generate()
    items = [rng.bytes(int(rng.integers(0, 40))) for _ in range(200)] + [b"", b"x" * 1000]
    batch = ox.blind(items)
    assert ox.finalize(batch, key.evaluate_blinded_rows(batch.points)) == key.evaluate(items)


def test_outputs_depend_on_key_and_item() -> None:
    a, b = ox.PirOprfKey.generate(), ox.PirOprfKey.generate()
    items = [b"alice", b"bob", b"alice"]
    fa = a.evaluate(items)
    assert fa[0] == fa[2] and fa[0] != fa[1]
    assert set(fa).isdisjoint(b.evaluate(items))


def test_hash_gives_points_on_the_curve() -> None:
    """Every u has u^3 + A u^2 + u a non-zero square mod p (Euler's criterion)."""
    us = ox.hash_to_u_many([b"%d" % i for i in range(300)])
    for row in us:
        u = _u(row)
        assert 1 < u < P - 1
        assert pow((u * u * u + A * u * u + u) % P, (P - 1) // 2, P) == 1
    assert len({r.tobytes() for r in us}) == 300


def test_blinding_is_fresh_each_time() -> None:
    first, second = ox.blind([b"same"]), ox.blind([b"same"])
    assert first.points.tobytes() != second.points.tobytes()


def _low_order_points() -> list[bytes]:
    """Encodings of edwards25519 points of order 1, 2, 4 and 8 (torsion)."""
    return [
        (1).to_bytes(32, "little"),  # identity
        (P - 1).to_bytes(32, "little"),  # (0, -1), order 2
        bytes(32),  # (+-sqrt(-1), 0), order 4
        bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
        bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    ]


@pytest.mark.parametrize("bad", _low_order_points())
def test_server_refuses_low_order_points(bad: bytes) -> None:
    with pytest.raises(OprfError, match="blinded element 0 is not a point of the prime-order"):
        ox.PirOprfKey.generate().evaluate_blinded([bad])


def test_server_refuses_a_point_outside_the_subgroup() -> None:
    """A valid curve point with a torsion component (P + T8) and a non-canonical
    encoding are both refused, at their index in the batch."""
    lib = library()
    good = ox.blind([b"k"]).points[0].tobytes()
    mixed = ctypes.create_string_buffer(32)
    assert lib.crypto_core_ed25519_add(mixed, good, _low_order_points()[3]) == 0
    noncanonical = (P + 1).to_bytes(32, "little")  # y = p + 1 = 1 (mod p), not reduced
    key = ox.PirOprfKey.generate()
    for bad in (mixed.raw, noncanonical):
        with pytest.raises(OprfError, match="blinded element 1 "):
            key.evaluate_blinded([good, bad])


def test_client_refuses_a_bad_answer() -> None:
    batch = ox.blind([b"a", b"b"])
    with pytest.raises(OprfError, match="1 elements for 2 items"):
        ox.finalize(batch, batch.points[:1])
    with pytest.raises(OprfError, match="evaluated element 1 "):
        ox.finalize(batch, np.stack([batch.points[0], np.frombuffer(bytes(32), np.uint8)]))


def test_key_must_be_clamped() -> None:
    with pytest.raises(OprfError, match="clamped"):
        ox.PirOprfKey(bytes(range(32)))
    assert ox.clamp(bytes(range(32))) != bytes(range(32))
    ox.PirOprfKey(ox.clamp(bytes(range(32))))


def test_threaded_batch_matches_one_by_one() -> None:
    key = ox.PirOprfKey.generate()
    items = [b"%d" % i for i in range(3000)]
    batch = key.evaluate(items)
    assert [batch[i] for i in range(0, 3000, 331)] == [key.evaluate([items[i]])[0]
                                                       for i in range(0, 3000, 331)]
