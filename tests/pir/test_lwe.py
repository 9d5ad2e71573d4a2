"""SimplePIR's LWE layer: decoding returns exactly the selected column."""

import numpy as np

from meshmpc.crypto.prg import Prg
from meshmpc.pir import lwe


def test_query_answer_decode_returns_the_column() -> None:
    rng = np.random.default_rng(0)
    db = rng.integers(0, 256, (300, 4000), dtype=np.uint8)
    a = lwe.expand_matrix(bytes(16), 4000, lwe.LWE_N)
    hint = lwe.hint(db, np.ascontiguousarray(a.T))
    columns = np.array([3, -1, 3999, 0])
    secrets, queries = lwe.make_queries(a, columns, Prg())
    digits = lwe.decode(lwe.answer(db, queries), hint, secrets)
    for row, col in enumerate(columns):
        if col >= 0:
            assert (digits[row] == db[:, col]).all()


def test_queries_for_different_columns_look_alike() -> None:
    a = lwe.expand_matrix(bytes(16), 2000, lwe.LWE_N)
    _, q = lwe.make_queries(a, np.array([0, 1999, -1]), Prg())
    assert q.shape == (3, 2000) and q.dtype == np.uint32
    # every row is spread over the whole ring (no visible Delta spike)
    assert all(q[r].std() > 2**30 for r in range(3))


def test_error_distribution_has_sigma() -> None:
    noise = np.zeros(200_000, np.uint32)
    lwe.add_gaussian(noise, Prg(bytes(16)))
    values = noise.view(np.int32)
    assert abs(values.mean()) < 0.1
    assert abs(values.std() - lwe.SIGMA) < 0.1
    assert np.abs(values).max() <= lwe.TAIL


def test_expand_matrix_is_deterministic_per_seed() -> None:
    assert (lwe.expand_matrix(b"a" * 16, 5, 7) == lwe.expand_matrix(b"a" * 16, 5, 7)).all()
    assert (lwe.expand_matrix(b"a" * 16, 5, 7) != lwe.expand_matrix(b"b" * 16, 5, 7)).any()
