"""Duplicate keys: fingerprints find candidates, the exact second pass confirms them."""

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshmpc.data import check, keyhash


@given(st.lists(st.text(max_size=30), min_size=1, max_size=60))
def test_fingerprints_equal_exactly_for_equal_strings(values):
    prints = keyhash.fingerprints(pa.array(values, pa.string()))
    for i, a in enumerate(values):
        for j, b in enumerate(values):
            assert (prints[i] == prints[j]) == (a == b)


def test_fingerprints_of_sliced_arrays_match():
    arr = pa.array(["a", "bb", "", "ccc", "bb"])
    assert keyhash.fingerprints(arr.slice(1))[0] == keyhash.fingerprints(arr)[1]


def test_repeated_rows_ignores_invalid_rows():
    prints = keyhash.fingerprints(pa.array(["x", "y", "x", "z", "y"]))
    valid = np.array([True, True, True, True, False])
    assert list(keyhash.repeated_rows(prints, valid)) == [0, 2]


@pytest.fixture
def keyed(tmp_path):
    schema = tmp_path / "k.schema.toml"
    schema.write_text("[dataset]\nkey = ['a', 'b']\n[[columns]]\nname = 'a'\ntype = 'string'\n"
                      "[[columns]]\nname = 'b'\ntype = 'int'\n", encoding="utf-8")
    data = tmp_path / "k.csv"
    data.write_text("a,b\nx,1\nx,2\ny,1\nx,1\nx\x1f1,\nx,2\n", encoding="utf-8")
    return schema, data


def test_composite_keys(keyed):
    schema, data = keyed
    issue = next(i for i in check(schema, data, batch_rows=2).issues
                 if i.kind == "duplicate_key")
    assert issue.rows == [1, 2, 4, 6] and "2 key value(s)" in issue.message


def test_fingerprint_collisions_never_report_false_duplicates(keyed, monkeypatch):
    schema, data = keyed
    monkeypatch.setattr("meshmpc.data.quality.fingerprints",
                        lambda keys: np.zeros(len(keys), np.uint64))  # all collide
    issue = next(i for i in check(schema, data).issues if i.kind == "duplicate_key")
    assert issue.rows == [1, 2, 4, 6]
