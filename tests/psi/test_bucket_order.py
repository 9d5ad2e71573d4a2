"""Bucket grouping of a spilled batch: the radix-sorted order equals the int64
stable order, bucket bounds included, up to 2^16 buckets and beyond."""

from __future__ import annotations

import numpy as np
import pytest

from meshmpc.psi.stream import bucket_order


@pytest.mark.parametrize("buckets", [2, 64, 1 << 16, (1 << 16) + 3])
def test_bucket_order_is_the_stable_order(buckets: int) -> None:
    ids = np.random.default_rng(5).integers(0, buckets, 50_000).astype(np.int64)
    ids[:3] = buckets - 1
    order, bounds = bucket_order(ids, buckets)
    expected = np.argsort(ids, kind="stable")
    assert np.array_equal(order, expected)
    assert np.array_equal(bounds, np.searchsorted(ids[expected], np.arange(buckets + 1)))
    assert bounds[-1] == len(ids)
