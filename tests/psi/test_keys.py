"""Key preparation: normalisation, composite keys, empty and duplicate rows, digests."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pytest

from meshmpc.psi.errors import PsiInputError
from meshmpc.psi.keys import (
    DIGEST_PERSON,
    KeyOptions,
    _digest_python,
    digest_items,
    prepare_keys,
)


def test_digest_is_personalised_blake2b() -> None:
    items = ["a", "", "é" * 300, "x\x1fy"]
    got = digest_items(pa.array(items))
    for row, item in zip(got, items, strict=True):
        want = hashlib.blake2b(item.encode(), digest_size=16, person=DIGEST_PERSON).digest()
        assert row.tobytes() == want
    assert (got == _digest_python(pa.array(items))).all()


def test_trim_and_casefold_make_keys_equal() -> None:
    table = pa.table({"k": ["  AbC ", "abc", "ABC"]})
    plain = prepare_keys(table, KeyOptions(("k",), trim=False), "f.csv")
    folded = prepare_keys(table, KeyOptions(("k",), trim=True, casefold=True), "f.csv")
    assert len(plain.digests) == 3
    assert len(folded.digests) == 1 and folded.report.duplicates == 2
    assert folded.report.duplicate_examples == [(2, 1), (3, 1)]


def test_empty_keys_dropped_with_row_numbers() -> None:
    table = pa.table({"k": ["a", "", None, " ", "b"]})
    prep = prepare_keys(table, KeyOptions(("k",)), "bank.csv")
    assert prep.rows.tolist() == [0, 4]
    assert prep.report.empty == 3 and prep.report.empty_examples == [2, 3, 4]
    with pytest.raises(PsiInputError, match=r"bank.csv: column 'k': 3 rows have an empty key"):
        prepare_keys(table, KeyOptions(("k",), on_empty="error"), "bank.csv")


def test_duplicates_error_names_rows() -> None:
    table = pa.table({"k": ["a", "b", "a"]})
    with pytest.raises(PsiInputError, match="row 3 repeats row 1"):
        prepare_keys(table, KeyOptions(("k",), on_duplicate="error"), "gov.csv")


def test_composite_keys_are_unambiguous() -> None:
    table = pa.table({"a": ["x", "xy", "x"], "b": ["yz", "z", "yz"]})
    prep = prepare_keys(table, KeyOptions(("a", "b")), "f.csv")
    assert prep.rows.tolist() == [0, 1]
    assert not (prep.digests[0] == prep.digests[1]).all()
    bad = pa.table({"a": ["x\x1fz"], "b": ["y"]})
    with pytest.raises(PsiInputError, match="U\\+001F at rows \\[1\\]"):
        prepare_keys(bad, KeyOptions(("a", "b")), "f.csv")


def test_composite_empty_component_is_empty() -> None:
    table = pa.table({"a": ["x", "x"], "b": ["", "y"]})
    prep = prepare_keys(table, KeyOptions(("a", "b")), "f.csv")
    assert prep.rows.tolist() == [1] and prep.report.empty_examples == [1]


def test_first_row_offsets_reports() -> None:
    table = pa.table({"k": ["a", "a"]})
    prep = prepare_keys(table, KeyOptions(("k",)), "f.csv", first_row=101)
    assert prep.report.duplicate_examples == [(102, 101)]
    assert np.array_equal(prep.rows, [0])


def test_digests_on_every_core_equal_item_hash() -> None:
    """digest_items (threaded kernel) gives item_hash's BLAKE2b-128 for keys of any length,
    also for a sliced arrow array (offsets not starting at zero)."""
    import pyarrow as pa

    from meshmpc.crypto.hashing import item_hash
    from meshmpc.psi.keys import DIGEST_PERSON, digest_items

    keys = [f"9131{i:014d}" * (1 + i % 3) for i in range(20_000)] + ["", "统一社会信用代码"]
    arr = pa.array(keys, pa.string())
    assert np.array_equal(digest_items(arr), item_hash(keys, domain=DIGEST_PERSON))
    part = arr.slice(777, 5000)
    assert np.array_equal(digest_items(part), item_hash(keys[777:5777], domain=DIGEST_PERSON))
