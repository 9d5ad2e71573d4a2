"""The ASCII fast path of key normalisation gives what NFKC gives (it skips NFKC only
when every byte is ASCII, where NFKC is the identity)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from meshmpc.data.keynorm import KeyRule, normalise


def _reference(arr: pa.Array) -> pa.Array:
    return pc.utf8_trim_whitespace(pc.utf8_normalize(arr, form="NFKC"))


def test_ascii_column_skips_nfkc_with_the_same_result() -> None:
    arr = pa.array([" 91310000ABC ", "x", "", None, "\t9\n"])
    assert normalise(arr, KeyRule()).equals(_reference(arr))


def test_full_width_keys_are_still_normalised() -> None:
    arr = pa.array(["９１３１", " 91\u3000", "ﬁ", None])
    got = normalise(arr, KeyRule())
    assert got.to_pylist() == ["9131", "91", "fi", None]
    sliced = arr.slice(1, 2)  # ASCII slice of a buffer holding other bytes: normalised
    assert normalise(sliced, KeyRule()).equals(_reference(sliced))
