"""Joint scoring: the bank learns totals only, batch and online (keyword PIR)."""


import numpy as np
import pytest

from meshmpc.ml.predict import OnlineScorer, ScoreUnavailable, publish_partial_scores, sum_to
from meshmpc.mpc.ring import RING64
from meshmpc.net.memory import run_parties

RNG = np.random.default_rng(8)
PARTIAL = {p: RNG.normal(scale=50, size=40) for p in ("bank", "gov", "fin", "telco")}


async def _sum(ctx):
    seen = []
    original = ctx.mesh.send

    async def spy(peer, tag, obj):
        seen.append((peer, tag, obj))
        await original(peer, tag, obj)

    ctx.mesh.send = spy
    total = await sum_to(ctx, "bank", PARTIAL[ctx.party])
    return total, seen


def test_batch_sum_reveals_the_total_only():
    out = run_parties(list(PARTIAL), _sum)
    total, _ = out["bank"]
    assert np.allclose(total, sum(PARTIAL.values()), atol=1e-3)
    for p in ("gov", "fin", "telco"):
        assert out[p][0] is None
        masked = [obj for peer, tag, obj in out[p][1] if tag.endswith("masked")]
        assert len(masked) == 1
        plain = RING64.encode(PARTIAL[p], 16)
        assert not np.any(masked[0] == plain)  # what reaches the bank is masked


KEYS = {"gov": [f"k{i}" for i in range(30)], "fin": [f"k{i}" for i in range(5, 30)]}
POINTS = {p: {k: float(i) * (2 if p == "gov" else -1) for i, k in enumerate(ks)}
          for p, ks in KEYS.items()}


async def _online(ctx):
    partners = ["gov", "fin"]
    if ctx.party in partners:
        keys = KEYS[ctx.party]
        values = np.array([POINTS[ctx.party][k] for k in keys])
        return await publish_partial_scores(ctx, "bank", partners, keys, values, "v1")
    scorer = OnlineScorer(ctx, partners, lambda fields: 500.0 + fields["x"])
    try:
        score = await scorer.score("k7", {"x": 3.0})
        with pytest.raises(ScoreUnavailable, match="fin"):
            await scorer.score("k2", {"x": 0.0})
        return score
    finally:
        await scorer.close()


def test_online_score_is_the_total_through_pir():
    out = run_parties(["bank", "gov", "fin"], _online)
    expected = 500.0 + 3.0 + POINTS["gov"]["k7"] + POINTS["fin"]["k7"]
    assert out["bank"] == pytest.approx(expected, abs=1e-3)


def test_masks_cancel_only_over_all_partners():
    from meshmpc.ml.predict import key_masks

    seeds = {"fin": b"\x01" * 16}
    gov = key_masks(["a", "b"], seeds, "gov", ["gov", "fin"], "v1")
    fin = key_masks(["a", "b"], {"gov": b"\x01" * 16}, "fin", ["gov", "fin"], "v1")
    assert np.array_equal(RING64.add(gov, fin), np.zeros(2, dtype=np.uint64))
    other = key_masks(["a", "b"], seeds, "gov", ["gov", "fin"], "v2")
    assert not np.any(other == gov)  # a new version redraws every mask


def test_online_scores_carry_consent_and_stop_at_the_partners_cap():
    """Each score's lookup carries purpose and consent to the partner's gate; a partner
    capped at two scores refuses the third (LookupRefused), a bad purpose is refused
    before anything is sent."""
    from meshmpc.data.consent import ConsentError, merkle_root
    from meshmpc.pir.errors import LookupRefused

    seen: list[dict] = []

    async def cap_of_two(client, count, header):
        seen.append({"client": client, "count": count, "purpose": header.get("purpose"),
                     "consent": header.get("consent")})
        if len(seen) > 2:
            raise LookupRefused("fin: bank's scores are capped (grant 9: 2 of 2 in total)")

    async def party(ctx):
        partners = ["gov", "fin"]
        if ctx.party in partners:
            keys = KEYS[ctx.party]
            values = np.array([POINTS[ctx.party][k] for k in keys])
            return await publish_partial_scores(ctx, "bank", partners, keys, values, "v1",
                                                admit=cap_of_two if ctx.party == "fin"
                                                else None)
        scorer = OnlineScorer(ctx, partners, lambda fields: 500.0 + fields["x"])
        try:
            with pytest.raises(ConsentError, match="marketing"):
                await scorer.score("k7", {"x": 3.0}, "marketing", "c-0")
            scores = [await scorer.score(k, {"x": 1.0}, "credit_approval", f"c-{k}")
                      for k in ("k7", "k8")]
            with pytest.raises(LookupRefused, match="capped"):
                await scorer.score("k9", {"x": 1.0}, "credit_approval", "c-k9")
            return scores
        finally:
            await scorer.close()

    out = run_parties(["bank", "gov", "fin"], party)
    assert out["bank"][1] == pytest.approx(501.0 + POINTS["gov"]["k8"] + POINTS["fin"]["k8"],
                                           abs=1e-3)
    assert [s["consent"] for s in seen] == [{"count": 1, "root": merkle_root([f"c-{k}"])}
                                            for k in ("k7", "k8", "k9")]
    assert {s["purpose"] for s in seen} == {"credit_approval"} and len(seen) == 3
