"""SecureBoost: the federated run equals the plaintext reference; edge cases; bad input."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from meshmpc.jobs.api import PartyInput, StepContext, StepOutput
from meshmpc.ml.boost import predict_bank, predict_partner, train_bank, train_partner
from meshmpc.ml.boost_core import BoostParams
from meshmpc.ml.boost_model import SecureBoostClassifier
from meshmpc.ml.boost_train import train_reference
from meshmpc.ml.components_boost import auc
from meshmpc.ml.components_boost import run as boost_component
from meshmpc.net.memory import run_parties

TEST_KEY = {"key_bits": 1024, "insecure_test_key": True}


def dataset(n: int = 1000, f: int = 8, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, f))
    z = x[:, 0] + x[:, 1] * x[:, f - 2] - x[:, f - 1] + 0.5 * x[:, 2] ** 2
    y = (z + rng.normal(scale=0.5, size=n) > 0.3).astype(float)
    return x, y


def federated(parts: dict[str, np.ndarray], y: np.ndarray, p: BoostParams):
    names = list(parts)
    bank, partners = names[0], names[1:]

    async def job(ctx):
        if ctx.party == bank:
            m = await train_bank(ctx, parts[bank], y, partners, p)
            return m, await predict_bank(ctx, m, parts[bank], partners)
        m = await train_partner(ctx, parts[ctx.party], bank)
        await predict_partner(ctx, m, parts[ctx.party])
        return m, None

    return run_parties(names, job)


def split_cols(x: np.ndarray, widths: list[int], names: list[str]) -> dict[str, np.ndarray]:
    at, out = 0, {}
    for nm, w in zip(names, widths, strict=True):
        out[nm] = x[:, at:at + w]
        at += w
    return out


@pytest.mark.parametrize("widths", [[3, 5], [2, 3, 3], [1, 4, 1, 2], [0, 8]])
def test_federated_equals_plaintext_reference(widths: list[int]) -> None:
    x, y = dataset()
    names = ["bank", "gov", "fin", "telco"][: len(widths)]
    parts = split_cols(x, widths, names)
    p = BoostParams(trees=3, depth=3, **TEST_KEY)
    out = federated(parts, y, p)
    ref, margin = asyncio.run(train_reference(list(parts.values()), y, p, names))
    model, scores = out["bank"]
    for t_fed, t_ref in zip(model["boosted"]["trees"], ref.trees, strict=True):
        assert t_fed["owner"] == t_ref.owner
        assert np.allclose(t_fed["value"], t_ref.value, atol=1e-9)
    assert np.allclose(model["margin"], margin, atol=1e-9)
    assert np.allclose(scores, 1 / (1 + np.exp(-margin)), atol=1e-9)
    assert auc(scores, y) > 0.8


def test_ciphertexts_in_chunks_give_the_same_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bank streams each tree's ciphertexts in chunks (encrypted while the previous
    one is on the link): with 7-row chunks the model equals the plaintext reference."""
    import meshmpc.ml.boost as boost

    monkeypatch.setattr(boost, "CT_CHUNK_ROWS", 7)
    crypto = boost.BankCrypto(BoostParams(**TEST_KEY), 20)
    crypto.new_tree(np.zeros(20), np.ones(20) / 4, np.ones(20, bool), 1.0, 0.25)
    assert crypto.chunks == 3
    x, y = dataset(300, 5)
    parts = split_cols(x, [2, 2, 1], ["bank", "gov", "fin"])
    p = BoostParams(trees=2, depth=2, **TEST_KEY)
    model, scores = federated(parts, y, p)["bank"]
    ref, margin = asyncio.run(train_reference(list(parts.values()), y, p, list(parts)))
    assert [t["owner"] for t in model["boosted"]["trees"]] == [t.owner for t in ref.trees]
    assert np.allclose(model["margin"], margin, atol=1e-9)


def test_partner_refuses_a_bad_chunk_count() -> None:
    x, _ = dataset(50, 4)

    async def job(ctx):
        if ctx.party == "bank":
            await ctx.send("gov", "cmd", {"op": "tree", "chunks": 0})
            await ctx.send("gov", "rows", np.arange(3))
            return None
        return await train_partner(ctx, x, "bank")

    with pytest.raises(Exception, match="ciphertext chunks"):
        run_parties(["bank", "gov"], job)


def test_constant_features_and_no_valid_split() -> None:
    x, y = dataset(400, 4)
    parts = {"bank": np.ones((400, 1)), "gov": np.zeros((400, 2))}
    out = federated(parts, y, BoostParams(trees=2, depth=3, **TEST_KEY))
    model, scores = out["bank"]
    for t in model["boosted"]["trees"]:
        assert t["owner"] == [""]  # the root is a leaf: no feature can split
    assert np.allclose(scores, scores[0])
    assert out["gov"][0]["records"] == {}
    # min_child_weight too large for any split: a single leaf per tree too.
    out = federated(split_cols(x, [2, 2], ["bank", "gov"]), y,
                    BoostParams(trees=1, depth=3, min_child_weight=1e9, **TEST_KEY))
    assert out["bank"][0]["boosted"]["trees"][0]["owner"] == [""]


def test_regression_goss_subsample_and_early_stopping() -> None:
    x, _ = dataset(1200, 6)
    y = x[:, 0] * 2 + x[:, 4] - x[:, 5] ** 2
    parts = split_cols(x, [2, 4], ["bank", "gov"])
    p = BoostParams(trees=4, depth=3, objective="squared", **TEST_KEY)
    model, scores = federated(parts, y, p)["bank"]
    _, margin = asyncio.run(train_reference(list(parts.values()), y, p))
    assert np.allclose(scores, margin, atol=1e-9)
    assert np.mean((scores - y) ** 2) < 0.5 * np.var(y)
    p2 = BoostParams(trees=30, depth=2, goss=(0.2, 0.2), colsample=0.5, validation=0.3,
                     early_stopping=2, objective="squared", learning_rate=0.8, **TEST_KEY)
    model2, _ = federated(parts, y, p2)["bank"]
    hist = model2["boosted"]["history"]
    assert len(model2["boosted"]["trees"]) <= len(hist)
    assert hist[int(np.argmin(hist))] <= hist[0]


def test_classifier_save_load_online_and_importance(tmp_path: Path) -> None:
    x, y = dataset(800, 5)
    parts = split_cols(x, [2, 3], ["bank", "gov"])
    clf = SecureBoostClassifier(trees=3, depth=2, **TEST_KEY).fit(parts, y)
    batch = clf.predict_proba(parts)
    clf.save(tmp_path)
    again = SecureBoostClassifier.load(tmp_path, ["bank", "gov"])
    assert np.allclose(again.predict_proba(parts), batch)
    one = {k: v[7:8] for k, v in parts.items()}
    assert np.allclose(again.predict_proba(one), batch[7:8])
    gov_imp = clf.models_["gov"]["importance"]
    assert set(gov_imp) <= {"x0", "x1", "x2"} and sum(v["splits"] for v in gov_imp.values()) > 0
    assert "x0" in clf.models_["bank"]["importance"]


def _step(party: str, workdir: Path, ctx=None) -> StepContext:
    parties = {"bank": PartyInput("bank", key="id", label="y"), "gov": PartyInput("gov", key="id")}
    return StepContext(ctx=ctx, job_name="j", step_id="boost", party=party, parties=parties,
                       step_parties=["bank", "gov"], party_params={}, workdir=workdir)


def test_component_trains_and_names_bad_columns(tmp_path: Path) -> None:
    x, y = dataset(600, 4)
    tables = {
        "bank": pa.table({"id": np.arange(600), "a": x[:, 0], "b": x[:, 1], "y": y}),
        "gov": pa.table({"id": np.arange(600), "c": x[:, 2], "d": x[:, 3]}),
    }
    params = {"trees": 2, "depth": 2, **TEST_KEY}

    async def job(ctx, tabs):
        inputs = {"align": StepOutput(tables={"aligned": tabs[ctx.party]})}
        return await boost_component(_step(ctx.party, tmp_path, ctx), inputs, params)

    out = run_parties(["bank", "gov"], job, tables)
    assert out["bank"].report["trees"] == 2 and out["bank"].report["auc"] > 0.7
    assert out["bank"].tables["scores"].num_rows == 600
    assert "records" in out["gov"].models["boost"]
    bad = dict(tables, gov=tables["gov"].append_column("sector", pa.array(["x"] * 600)))
    with pytest.raises(ValueError, match=r"party gov, step boost .*'sector'"):
        run_parties(["bank", "gov"], job, bad)
    with pytest.raises(ValueError, match="unknown parameter"):
        BoostParams.from_mapping({"tres": 3})


def test_mismatched_rows_are_refused() -> None:
    x, y = dataset(300, 4)
    parts = {"bank": x[:, :2], "gov": x[:200, 2:]}
    with pytest.raises(ValueError, match="aligned rows"):
        federated(parts, y, BoostParams(trees=1, depth=2, **TEST_KEY))


def test_failed_partner_stops_the_bank() -> None:
    x, y = dataset(300, 4)

    async def job(ctx):
        if ctx.party == "bank":
            return await train_bank(ctx, x[:, :2], y, ["gov"], BoostParams(trees=2, depth=2,
                                                                           **TEST_KEY))
        await ctx.recv("bank", "cmd")
        raise RuntimeError("gov node went down")

    with pytest.raises(Exception, match="gov"):
        run_parties(["bank", "gov"], job)


@pytest.mark.slow
def test_auc_close_to_xgboost() -> None:
    xgb = pytest.importorskip("xgboost")
    x, y = dataset(20000, 12, seed=11)
    test = np.arange(y.size) % 5 == 0
    parts = split_cols(x[~test], [4, 8], ["bank", "gov"])
    clf = SecureBoostClassifier(trees=20, depth=4, learning_rate=0.3).fit(parts, y[~test])
    ours = auc(clf.predict_proba(split_cols(x[test], [4, 8], ["bank", "gov"])), y[test])
    booster = xgb.train({"objective": "binary:logistic", "tree_method": "hist", "max_bin": 32,
                         "max_depth": 4, "eta": 0.3, "lambda": 1.0, "min_child_weight": 1.0,
                         "base_score": float(y[~test].mean())},
                        xgb.DMatrix(x[~test], label=y[~test]), num_boost_round=20)
    theirs = auc(booster.predict(xgb.DMatrix(x[test])), y[test])
    assert abs(ours - theirs) <= 0.005
