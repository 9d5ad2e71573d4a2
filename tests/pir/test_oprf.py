"""The ristretto255 OPRF: blinded evaluation equals the direct PRF; bad points fail."""

import numpy as np
import pytest

from meshmpc.crypto import oprf


def test_blinded_evaluation_equals_direct_prf() -> None:
    key = oprf.OprfKey.generate()
    items = [b"alice", b"bob", b"", b"alice"]
    batch = oprf.blind(items)
    outputs = oprf.finalize(batch, key.evaluate_blinded(batch.points))
    assert outputs == key.evaluate(items)
    assert outputs[0] == outputs[3] and len(set(outputs[:3])) == 3


def test_blinding_hides_the_item() -> None:
    first, second = oprf.blind([b"same"]), oprf.blind([b"same"])
    assert first.points != second.points  # fresh r each time


def test_different_keys_give_unrelated_outputs() -> None:
    a, b = oprf.OprfKey.generate(), oprf.OprfKey.generate()
    assert a.evaluate([b"x"]) != b.evaluate([b"x"])


@pytest.mark.parametrize("bad", [bytes(32), b"\x01" + bytes(31), b"short"])
def test_server_rejects_invalid_points(bad: bytes) -> None:
    with pytest.raises(oprf.OprfError, match="blinded element 0"):
        oprf.OprfKey.generate().evaluate_blinded([bad])


def test_client_rejects_a_wrong_count() -> None:
    batch = oprf.blind([b"a", b"b"])
    with pytest.raises(oprf.OprfError, match="1 elements for 2 items"):
        oprf.finalize(batch, batch.points[:1])


def test_threaded_batch_matches_one_by_one() -> None:
    key = oprf.OprfKey.generate()
    items = [b"%d" % i for i in range(1000)]
    batch = key.evaluate(items)
    assert [batch[i] for i in range(0, 1000, 97)] == [key.evaluate([items[i]])[0]
                                                      for i in range(0, 1000, 97)]


def test_arrow_items_hash_like_bytes() -> None:
    """A pyarrow (Chunked)Array of keys is read from its buffers: the same outputs as the
    list of bytes (a per-item bytes(x) of an arrow scalar used to raise)."""
    import pyarrow as pa

    keys = [f"91{i:016d}" for i in range(50)]
    chunked = pa.chunked_array([pa.array(keys[:20]), pa.array(keys[20:])])
    want = oprf.hash_to_group_many([k.encode() for k in keys])
    assert np.array_equal(oprf.hash_to_group_many(chunked), want)
    assert np.array_equal(oprf.hash_to_group_many(pa.array(keys, pa.large_string())), want)
    key = oprf.OprfKey.generate()
    assert np.array_equal(key.evaluate_rows(chunked),
                          key.evaluate_rows([k.encode() for k in keys]))
