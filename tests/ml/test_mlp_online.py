"""Online scoring of one applicant by a first-layer-mode MLP: partners' masked partials by
keyword PIR, the rest of the network on shares, only the logit opened to the bank."""

import asyncio

import numpy as np
import pytest

from meshmpc.ml.logistic import split_roles
from meshmpc.ml.mlp import MLPConfig
from meshmpc.ml.mlp_model import MLPModel
from meshmpc.ml.mlp_online import (
    MLPOnlineScorer,
    MLPOnlineSession,
    boxed_first_layer_table,
    exchange_box_keys,
    masked_first_layer_table,
    publish_first_layer,
    vector_masks,
)
from meshmpc.ml.mlp_secure import train
from meshmpc.ml.predict import ScoreUnavailable
from meshmpc.ml.vertical import VerticalSession
from meshmpc.mpc.ring import RING64
from meshmpc.net.memory import run_parties

WIDTHS = {"bank": 2, "gov": 3, "fin": 2}
N = 160
RNG = np.random.default_rng(11)
X = {p: RNG.normal(size=(N, w)) for p, w in WIDTHS.items()}
Y = ((X["bank"][:, 0] + X["gov"][:, 1] * X["fin"][:, 0]) > 0).astype(np.float64)
KEYS = [f"c{i:03d}" for i in range(N)]
PARTNERS = ["gov", "fin"]
CONFIG = MLPConfig(layers=(4, 3), epochs=1, batch_size=64, learning_rate=0.1,
                   reveal="first-layer", init_seed=b"mlp-online-seed0")


async def _job(ctx, mode="summed"):
    roles = split_roles(N, 0.2, 0.0)
    session = await VerticalSession.open(ctx.scope("train"), "bank", "honest-majority")
    result = await train(session, X[ctx.party], Y if ctx.party == "bank" else None, "bank",
                         roles, CONFIG)
    names = [f"{ctx.party}.f{i}" for i in range(WIDTHS[ctx.party])]
    model = MLPModel.from_result(ctx.party, names, result, CONFIG, "honest-majority",
                                 session.compute, "ot")
    online = MLPOnlineSession(
        await VerticalSession.open(ctx.scope("online"), "bank", "honest-majority"),
        model, "bank")
    secret, holder_key = await exchange_box_keys(ctx, session.compute, PARTNERS, "bank")
    online.box_key = secret
    if ctx.party in PARTNERS:
        keys = KEYS if ctx.party == "gov" else KEYS[:-1]  # fin lacks the last applicant
        x = X[ctx.party] if ctx.party == "gov" else X[ctx.party][:-1]
        served, passes = await asyncio.gather(
            publish_first_layer(ctx.scope("pir"), "bank", PARTNERS, keys, model, x, "v1",
                                mode=mode, holder_key=holder_key),
            online.serve())
        return passes
    scorer = MLPOnlineScorer(ctx.scope("pir"), online, PARTNERS, model, mode=mode)
    try:
        scores = [await scorer.score(KEYS[i], X["bank"][i]) for i in (3, 41)]
        with pytest.raises(ScoreUnavailable, match="fin"):
            await scorer.score(KEYS[-1], X["bank"][-1])
    finally:
        await scorer.close()
    return scores, result.scores_z


@pytest.mark.parametrize("mode", ["summed", "shared"])
def test_online_logit_equals_the_batch_logit_of_that_row(mode):
    out = run_parties(list(WIDTHS), _job, mode)
    scores, batch = out["bank"]
    assert scores == pytest.approx([batch[3], batch[41]], abs=5e-3)
    assert abs(batch[3] - batch[41]) > 1e-2  # two different applicants, two scores
    assert out["gov"] == out["fin"] == 2  # each compute party joined exactly two passes


def test_partner_tables_are_masked_and_masks_cancel_over_partners():
    partial = {"gov": RNG.normal(size=(5, 4)), "fin": RNG.normal(size=(5, 4))}
    keys = KEYS[:5]

    async def job(ctx):
        return await masked_first_layer_table(ctx, PARTNERS, keys, partial[ctx.party], "v1")

    tables = run_parties(PARTNERS, job)
    words = {p: np.array([[int(w) for w in row.split()] for row in
                          t.column("masked_first_layer").to_pylist()], dtype=np.uint64)
             for p, t in tables.items()}
    for p in PARTNERS:  # what a partner publishes is not its partial
        assert not np.any(words[p] == RING64.encode(partial[p], 16))
    total = RING64.decode(RING64.add(words["gov"], words["fin"]), 16)
    assert np.allclose(total, partial["gov"] + partial["fin"], atol=1e-4)


def test_a_new_version_redraws_every_mask():
    seeds = {"fin": b"\x02" * 16}
    a = vector_masks(KEYS[:4], seeds, "gov", PARTNERS, "v1", 3)
    b = vector_masks(KEYS[:4], seeds, "gov", PARTNERS, "v2", 3)
    assert a.shape == (4, 3) and not np.any(a == b)
    assert len(set(a.ravel().tolist())) == a.size  # units and keys get distinct masks


def test_shared_mode_records_hide_the_partial_and_box_the_mask_for_the_holder():
    from nacl.public import PrivateKey, SealedBox

    holder = PrivateKey.generate()
    partial = RNG.normal(size=(4, 3))
    table = boxed_first_layer_table(KEYS[:4], partial, bytes(holder.public_key))
    masked = np.array([[int(w) for w in row.split()] for row in
                       table.column("masked_first_layer").to_pylist()], dtype=np.uint64)
    masks = np.stack([np.frombuffer(SealedBox(holder).decrypt(bytes.fromhex(b)), np.uint64)
                      for b in table.column("mask_box").to_pylist()])
    # the published words alone are not the partial; minus the holder's masks they are
    assert not np.any(masked == RING64.encode(partial, 16))
    assert np.allclose(RING64.decode(RING64.sub(masked, masks), 16), partial, atol=1e-4)


def test_shared_mode_needs_a_holder_other_than_bank_and_partner():
    from meshmpc.ml.mlp_online import mask_holder
    from meshmpc.ml.vertical import VerticalError

    assert mask_holder("gov", ["bank", "gov", "fin"], "bank") == "fin"
    with pytest.raises(VerticalError, match="mode 'summed'"):
        mask_holder("gov", ["bank", "gov"], "bank")
