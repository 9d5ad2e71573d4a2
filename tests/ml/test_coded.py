"""CodedMatrix (1 byte a cell WOE features) against the dense matrix it stands for."""

import numpy as np
import pyarrow as pa
import pytest

from meshmpc.jobs.api import StepOutput
from meshmpc.ml.coded import CodedMatrix, is_coded
from meshmpc.ml.components_model import logistic
from meshmpc.ml.logistic import feature_scale, laid_out
from meshmpc.ml.synthetic import party_inputs, run_step, vertical_woe_data


def _coded(n=500, d=7, k=6, seed=3):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, k, size=(n, d), dtype=np.uint8)
    values = rng.normal(size=(d, k))
    dense = values[np.arange(d), codes]
    return CodedMatrix(codes, values), dense


def test_decoding_slicing_and_statistics_equal_the_dense_matrix():
    m, dense = _coded()
    assert np.array_equal(np.asarray(m), dense)
    view = m[100:230]
    assert view.parent is m and view.lo == 100 and view.shape == (130, 7)
    assert np.array_equal(np.asarray(view), dense[100:230])
    assert np.array_equal(np.asarray(view[10:20]), dense[110:120]) and view[10:20].lo == 110
    order = np.random.default_rng(1).permutation(500)
    assert np.array_equal(np.asarray(m[order]), dense[order])
    mask = order < 200
    assert np.allclose(feature_scale(m[mask]), feature_scale(dense[mask]))
    scale = feature_scale(dense)
    assert np.allclose(np.asarray(laid_out(m, order, scale)), dense[order] / scale)
    w = np.random.default_rng(2).normal(size=7)
    assert np.allclose(m @ w, dense @ w)
    constant = CodedMatrix(np.zeros((50, 2), np.uint8), np.ones((2, 3)))
    assert np.array_equal(feature_scale(constant), [1.0, 1.0])


def test_from_table_reads_dictionary_columns_and_refuses_others():
    m, dense = _coded(n=300, d=3)
    table = pa.table({f"c{j}": pa.array(dense[:, j]).dictionary_encode() for j in range(3)})
    assert is_coded(table, ["c0", "c1", "c2"])
    back = CodedMatrix.from_table(table, ["c0", "c1", "c2"])
    assert back.codes.dtype == np.uint8 and np.array_equal(np.asarray(back), dense)
    plain = pa.table({"c0": pa.array(dense[:, 0])})
    assert not is_coded(plain, ["c0"])
    with pytest.raises(ValueError, match="c0"):
        CodedMatrix.from_table(plain, ["c0"])


def _woe_inputs(data, parties, coded):
    out = {}
    for p in parties:
        table = data.features_table(p)
        if coded:
            table = pa.table([c.dictionary_encode() if c.type == pa.float64() else c
                              for c in table.columns], names=table.column_names)
        out[p] = {"bins": StepOutput(tables={"features": table},
                                     models={"binning": data.binning[p]})}
    return out


def test_logistic_on_coded_features_equals_dense_honest_majority_four_parties(tmp_path):
    """The compact WOE path (coded owners' products, telco's matrix replicated tile by tile
    as an input provider) trains exactly the model of the dense path."""
    widths = {"bank": 2, "gov": 3, "fin": 3, "telco": 2}
    data = vertical_woe_data(900, widths, seed=4)
    parties = list(widths)
    params = {"epochs": 3, "validation": 0.0, "security": "honest-majority"}
    runs = {}
    for coded in (False, True):
        inputs = _woe_inputs(data, parties, coded)
        if coded:
            assert is_coded(inputs["telco"]["bins"].tables["features"], ["telco_f0"])
        runs[coded] = run_step(logistic, party_inputs(parties), inputs, params,
                               tmp_path / str(coded), "lr")
    for p in parties:
        dense = np.asarray(runs[False][p].models["logistic"]["weights"])
        coded = np.asarray(runs[True][p].models["logistic"]["weights"])
        assert dense.shape == (widths[p],) and np.allclose(coded, dense, atol=2e-3), p
    z = [runs[c]["bank"].tables["scores"].column("z").to_numpy() for c in (False, True)]
    assert np.allclose(z[0], z[1], atol=1e-2)
