"""Unified social credit codes: the GB 32100-2015 check character, built and checked in bulk."""

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshmpc.data import uscc

# Published codes of well-known firms (Huawei, Tencent Shenzhen, Alibaba China, Bank of China).
KNOWN = ["914403001922038216", "91440300708461136T", "91330100716105852F", "91110000802100433B"]


@pytest.mark.parametrize("code", KNOWN)
def test_known_codes_are_valid(code):
    assert uscc.is_valid(code)
    assert uscc.check_character(code[:17]) == code[17]


def test_known_organisation_codes_have_gb11714_check_digits():
    bodies = np.frombuffer("".join(c[8:16] for c in KNOWN).encode(), np.uint8).reshape(-1, 8)
    assert bytes(uscc.organisation_check(bodies).astype(np.uint8)).decode() == "".join(
        c[16] for c in KNOWN)


def test_weights_are_powers_of_three_mod_31():
    assert list(uscc.WEIGHTS[:6]) == [1, 3, 9, 27, 19, 26]
    assert len(uscc.ALPHABET) == 31 and not set("IOZSV") & set(uscc.ALPHABET)


@given(st.integers(0, 16), st.sampled_from(uscc.ALPHABET), st.sampled_from(KNOWN))
def test_any_single_substitution_is_detected(position, glyph, code):
    changed = code[:position] + glyph + code[position + 1:]
    assert uscc.is_valid(changed) == (changed == code)


def test_malformed_codes_are_invalid():
    bad = ["", "91440300708461136", "91440300708461136TT", "91440300708461136t",
           "9144030070846113IT", None]
    assert not uscc.valid_mask(pa.array(bad, pa.string())).any()


def test_build_gives_distinct_valid_codes_in_bulk():
    n = 50_000
    rng = np.random.default_rng(1)
    serial = rng.choice(31**8, n, replace=False)
    codes = uscc.build(np.full(n, ord("9"), np.uint8), np.full(n, ord("1"), np.uint8),
                       np.full(n, 310115), serial)
    assert uscc.valid_mask(codes).all()
    assert len(set(codes.to_pylist())) == n
    assert codes[0].as_py().startswith("91310115")


def test_valid_mask_handles_sliced_and_chunked_arrays():
    arr = pa.array(["x", *KNOWN, "91440300708461136X"])
    assert list(uscc.valid_mask(arr.slice(1))) == [True] * 4 + [False]
    chunked = pa.chunked_array([arr.slice(0, 2), arr.slice(2)])
    assert list(uscc.valid_mask(chunked)) == [False] + [True] * 4 + [False]
