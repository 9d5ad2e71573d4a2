"""Joint scoring: batch (aligned rows) and online (one applicant through keyword PIR).

**Batch** (:func:`sum_to`): every party computes its partial score of each
aligned row in plaintext (its points, or its ``x @ w``); the partners mask
theirs with pairwise PRG masks that cancel in the sum and send them to the
bank, which adds them to its own partial: the bank learns the total of every
row, not any partner's contribution (with a single partner the total minus
the bank's own part *is* that partner's contribution: inherent, not a leak of
the protocol). Cost: n ring words from each partner to the bank, one message
per pair of partners for the mask seed.

**Online** (:class:`OnlineScorer`, :func:`publish_partial_scores`): each
partner publishes, for every key it holds, its masked partial score
``m_P(k) = s_P(k) + sum_Q ±PRF(seed_PQ, version || k)`` (masks from pairwise
seeds between partners, cancelling in the sum over partners) as a labelled
keyword-PIR database. The bank retrieves ``m_P(k)`` from every partner by PIR
(the partner learns neither the key nor whether it was found) and adds them
to its own points: it learns the total only; each ``m_P`` alone is uniform
when there are two or more partners. A fresh ``version`` re-draws every mask,
so two versions of a database never let the bank difference one partner's
scores.

A key unknown to a partner: that partner's PIR answer says "not found", so
the bank learns that this partner does not hold the applicant (the membership
bit of keyword PIR), and the other partners' masks for that key no longer
cancel, so no total can be formed: :class:`ScoreUnavailable` names the
partners lacking the key, and the caller decides (reject, score bank-only, or
ask again later). Partners learn nothing about who is scored in either case.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from meshmpc.crypto.hashing import item_hash
from meshmpc.errors import MeshMPCError
from meshmpc.mpc.prg import Prg, fresh_key
from meshmpc.mpc.ring import RING64
from meshmpc.net import Context

FRAC_BITS = 16
MASK_DOMAIN = b"meshmpc.score.v1"
MASK_COLUMN = "masked_partial"


class ScoreUnavailable(MeshMPCError, LookupError):
    """Some partners do not hold the applicant's key; no total score exists."""

    def __init__(self, key: object, missing: Sequence[str]) -> None:
        self.key = key
        self.missing = list(missing)
        super().__init__(f"applicant {key!r} is unknown to {', '.join(self.missing)}: their "
                         f"masks do not cancel, so no joint score can be formed")


def _sign(me: str, other: str, order: Sequence[str]) -> int:
    return 1 if order.index(me) < order.index(other) else -1


async def pairwise_seeds(ctx: Context, group: Sequence[str]) -> dict[str, bytes]:
    """A fresh 16-byte seed shared with every other member of ``group`` (the lower
    party of each pair draws it from the OS and sends it over the encrypted link)."""
    me = ctx.party
    seeds: dict[str, bytes] = {}
    for a, b in itertools.combinations(list(group), 2):
        if me == a:
            seeds[b] = fresh_key()
            await ctx.send(b, "seed", seeds[b])
        elif me == b:
            got = await ctx.recv(a, "seed")
            if not isinstance(got, bytes | bytearray) or len(got) != 16:
                raise MeshMPCError(f"party {a} sent a malformed mask seed")
            seeds[a] = bytes(got)
    return seeds


async def sum_to(ctx: Context, receiver: str, partial: np.ndarray) -> np.ndarray | None:
    """The receiver learns sum over parties of ``partial`` (float vectors of one length)."""
    scope = ctx.scope("sum")
    senders = [p for p in ctx.parties if p != receiver]
    values = np.asarray(partial, dtype=np.float64).ravel()
    encoded = RING64.encode(values, FRAC_BITS)
    if ctx.party != receiver:
        seeds = await pairwise_seeds(scope.scope("pairs"), senders)
        masked = encoded
        for other, seed in seeds.items():
            mask = RING64.random(Prg(seed), values.shape, 0)
            if _sign(ctx.party, other, senders) > 0:
                masked = RING64.add(masked, mask)
            else:
                masked = RING64.sub(masked, mask)
        await scope.send(receiver, "masked", masked)
        return None
    total = encoded
    for party in senders:
        got = await scope.recv(party, "masked")
        if not isinstance(got, np.ndarray) or got.shape != values.shape \
                or got.dtype != np.uint64:
            raise MeshMPCError(f"party {party} sent {getattr(got, 'shape', '?')} masked "
                               f"partial scores, expected {values.shape} uint64")
        total = RING64.add(total, got)
    return np.asarray(RING64.decode(total, FRAC_BITS), dtype=np.float64)


# --- online scoring ---------------------------------------------------------------------
def key_masks(keys: Any, seeds: Mapping[str, bytes], me: str, partners: Sequence[str],
              version: str) -> np.ndarray:
    """sum_Q ±PRF(seed_PQ, version || key) for every key (ring words), in one C call per peer."""
    n = len(keys)
    total = np.zeros(n, dtype=np.uint64)
    for other, seed in seeds.items():
        prf = item_hash(keys, key=seed + version.encode()[:48], domain=MASK_DOMAIN)
        words = np.ascontiguousarray(prf[:, :8]).view(np.uint64).ravel()
        total = RING64.add(total, words) if _sign(me, other, partners) > 0 \
            else RING64.sub(total, words)
    return total


async def masked_partial_table(ctx: Context, partners: Sequence[str], keys: Sequence[str],
                               partial: np.ndarray, version: str,
                               key_name: str = "key") -> pa.Table:
    """A partner's table key -> masked partial score (decimal ring word), ready for PIR."""
    seeds = await pairwise_seeds(ctx.scope(f"online-seeds/{version}"), partners)
    masks = key_masks(list(keys), seeds, ctx.party, partners, version)
    masked = RING64.add(RING64.encode(np.asarray(partial, dtype=np.float64), FRAC_BITS), masks)
    return pa.table({key_name: pa.array([str(k) for k in keys]),
                     MASK_COLUMN: pa.array([str(int(v)) for v in masked.tolist()])})


async def publish_partial_scores(ctx: Context, bank: str, partners: Sequence[str],
                                 keys: Sequence[str], partial: np.ndarray,
                                 version: str, admit: Any = None) -> int:
    """Partner side: build the masked PIR database and serve the bank until it closes.

    ``admit``: the partner's :data:`~meshmpc.pir.server.LookupGate` (its node's grant
    caps on ``online.score``, e.g. :class:`meshmpc.pir.admit_http.HttpLookupGate`),
    asked before each score is answered."""
    from meshmpc.pir.api import database_from_table
    from meshmpc.pir.server import PirServer

    table = await masked_partial_table(ctx, partners, keys, partial, version)
    server = PirServer(database_from_table(table, "key"), admit=admit)
    return await server.serve(ctx, bank)



async def cached_pir_client(ctx: Context, clients: dict[str, Any], partner: str) -> Any:
    """``partner``'s PIR client from ``clients``, made and refreshed on first use (its hint
    is downloaded once per scorer, not once per applicant)."""
    from meshmpc.pir.client import PirClient

    if partner not in clients:
        client = PirClient(ctx, partner)
        await client.refresh()
        clients[partner] = client
    return clients[partner]

class OnlineScorer:
    """The bank's scorer of single applicants (used by the decision service).

    ``bank_points(bank_fields) -> float`` is the bank's own part (its points plus
    the base points), e.g. :meth:`meshmpc.ml.scorecard.PartyScorecard.score_fields`.
    """

    def __init__(self, ctx: Context, partners: Sequence[str], bank_points: Any) -> None:
        self.ctx = ctx
        self.partners = list(partners)
        self.bank_points = bank_points
        self._clients: dict[str, Any] = {}

    async def _client(self, partner: str) -> Any:
        return await cached_pir_client(self.ctx, self._clients, partner)

    async def score(self, key: object, bank_fields: Mapping[str, Any],
                    purpose: str | None = None, consent_ref: str | None = None) -> float:
        """The applicant's total score; raises :class:`ScoreUnavailable` (see module doc).

        ``purpose`` and ``consent_ref`` go with each partner's lookup (checked first:
        a bad one raises ``ConsentError`` before anything is sent); a partner whose
        node refuses raises :class:`~meshmpc.pir.errors.LookupRefused`."""
        import json

        from meshmpc.data.consent import consent_fields

        fields = {} if purpose is None and consent_ref is None else consent_fields(
            purpose, None if consent_ref is None else [consent_ref])
        total = np.zeros(1, dtype=np.uint64)
        missing = []
        for partner in self.partners:
            client = await self._client(partner)
            client.request_fields = fields
            hit = (await client.query([key]))[0]
            if not hit.found or not hit.record:
                missing.append(partner)
                continue
            word = int(json.loads(hit.record)[MASK_COLUMN])
            total = RING64.add(total, np.asarray([word], dtype=np.uint64))
        if missing:
            raise ScoreUnavailable(key, missing)
        partners_sum = float(RING64.decode(total, FRAC_BITS)[0])
        return partners_sum + float(self.bank_points(bank_fields))

    async def close(self) -> None:
        """End the PIR sessions with every partner (their servers stop serving)."""
        from meshmpc.pir.client import PirClient

        for partner in self.partners:
            client = self._clients.get(partner) or PirClient(self.ctx, partner)
            await client.close()
        self._clients.clear()
