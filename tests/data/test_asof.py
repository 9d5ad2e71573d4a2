"""As-of joins take the latest value at or before the observation date, never a later one."""

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from meshmpc.data.asof import asof_join, mask_recorded_after, recorded_at_columns, to_days
from meshmpc.errors import DataError

DAY0 = dt.date(2024, 1, 1)


def _brute(left_keys, left_days, right_keys, right_days):
    out = []
    for k, d in zip(left_keys, left_days, strict=True):
        best = [(rd, i) for i, (rk, rd) in enumerate(zip(right_keys, right_days, strict=True))
                if rk == k and rd <= d]
        out.append(max(best)[1] if best else None)
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_asof_join_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    keys = [f"k{i}" for i in range(30)]
    lk = list(rng.choice(keys, 200))
    ld = rng.integers(0, 400, 200)
    rk = list(rng.choice(keys[:25], 300))
    rd = rng.choice(400, 300, replace=False)  # distinct snapshot dates: one answer per row
    left = pa.table({"id": lk, "obs": pa.array([DAY0 + dt.timedelta(int(d)) for d in ld])})
    right = pa.table({"id": rk, "snap": pa.array([DAY0 + dt.timedelta(int(d)) for d in rd]),
                      "v": np.arange(300)})
    got = asof_join(left, right, "id", "obs", "snap").column("v").to_pylist()
    assert got == _brute(lk, ld, rk, rd)
    assert any(g is None for g in got) and any(g is not None for g in got)


def test_masking_blanks_later_values_and_drops_stamps():
    table = pa.table({"x": [1.0, 2.0, 3.0, 4.0],
                      "x_recorded_at": ["2024-01-01", "2024-03-01", None, "2024-02-01"]})
    obs = to_days(pa.array(["2024-02-01"] * 4), "obs")
    pairs = recorded_at_columns(table)
    masked = mask_recorded_after(table, obs, pairs)
    assert masked.column_names == ["x"]
    assert masked.column("x").to_pylist() == [1.0, None, None, 4.0]  # unknown time: unusable


def test_bad_inputs_name_the_column():
    with pytest.raises(DataError, match="column 'when'"):
        to_days(pa.array([1.5]), "when")
    with pytest.raises(DataError, match="no column 'snap'"):
        asof_join(pa.table({"id": [1], "d": [DAY0]}), pa.table({"id": [1]}), "id", "d", "snap")
