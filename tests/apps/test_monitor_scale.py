"""The 10^6-loan monitoring month's keys: pyarrow hands back a ChunkedArray at that size.

``pa.array`` of a numpy string array of 10^6 items returns a ChunkedArray; the
masks' PRF (``item_hash``) used to fall back to ``bytes(scalar)`` on it, which
raised ``TypeError: __bytes__ returned non-bytes`` in ``meshmpc bench
credit_monitor --loans 1000000``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from meshmpc_bench.credit_monitor import _keys
from meshmpc_credit.inloan import feed

from meshmpc.crypto.hashing import item_hash
from meshmpc.ml.predict import key_masks

SEEDS = {"fin": b"s" * 16, "telco": b"t" * 16}


def test_masks_of_chunked_keys_equal_those_of_one_array() -> None:
    chunked = pa.chunked_array([["91000001", "91000002"], ["91000003"], []])
    flat = ["91000001", "91000002", "91000003"]
    assert np.array_equal(item_hash(chunked, key=b"k"), item_hash(flat, key=b"k"))
    assert np.array_equal(key_masks(chunked, SEEDS, "gov", ["gov", "fin", "telco"], "month-1"),
                          key_masks(flat, SEEDS, "gov", ["gov", "fin", "telco"], "month-1"))


@pytest.mark.slow
def test_a_million_loan_keys_mask_and_seal() -> None:
    ids = np.arange(1_000_000)
    raw = pa.array(np.char.add("91", np.char.zfill(ids.astype(str), 16)))
    assert isinstance(raw, pa.ChunkedArray)  # what pyarrow does at this size (the trigger)
    masks = key_masks(raw, SEEDS, "gov", ["gov", "fin", "telco"], "month-1")
    keys = _keys(ids)
    assert isinstance(keys, pa.Array) and len(keys) == ids.size
    assert np.array_equal(masks, key_masks(keys, SEEDS, "gov", ["gov", "fin", "telco"],
                                           "month-1"))
    rows = feed.key_items(keys[:1000])
    assert rows.shape == (1000, feed.KEY_WIDTH) and rows[0, 0] == 18
