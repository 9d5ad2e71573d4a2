"""Online scoring of one applicant by a vertical MLP (trained with ``reveal: first-layer``).

The same path as the logistic model's online score (:mod:`meshmpc.ml.predict`):

1. Each partner P computes, for every key k it holds, its first-layer partial
   z_P(k) = x_P(k) W1_P (a vector of layers[0] values) and publishes
   m_P(k) = z_P(k) + sum_Q ±PRF(seed_PQ, version || j || k) per unit j (pairwise
   masks between partners, cancelling in the sum over partners) as a labelled
   keyword-PIR database.
2. The bank retrieves m_P(k) from every partner by keyword PIR (the partner
   learns neither k nor whether it was found), sums them and adds its own
   x_bank W1_bank: the first-layer pre-activation h1 - b1 of the applicant.
3. The bank inputs that vector into the compute parties' sharing; the rest of
   the network (b1, ReLU, hidden and output layers, all weights shared) runs
   on shares, and only the output logit is opened, to the bank.

What each party learns. Partners: nothing about who is scored (keyword PIR;
they see that a query arrived). Compute parties other than the bank: shares
only (they learn that one score was computed). The bank: the score, and the
partners' summed first-layer partial sum_P x_P W1_P (layers[0] values; each
m_P alone is uniform when there are two or more partners, so no single
partner's vector). That sum is a projection of the partners' features by
weights the bank does not know; hiding it too would need the masks' sum
shared among the compute parties without any of them learning k (a PIR answer
encrypted to a compute party), which this module does not do. A fresh
``version`` redraws every mask. A key some partner lacks:
:class:`~meshmpc.ml.predict.ScoreUnavailable` names the partners.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from meshmpc.crypto.hashing import item_hash
from meshmpc.ml.mlp import MLPConfig
from meshmpc.ml.mlp_model import MLPModel, PrecomputedFirstLayer
from meshmpc.ml.predict import FRAC_BITS, ScoreUnavailable, _sign, pairwise_seeds
from meshmpc.ml.vertical import VerticalError, VerticalSession, tensor_from_words
from meshmpc.mpc.ring import RING64
from meshmpc.net import Context

MASK_DOMAIN = b"meshmpc.mlp1.v1"  # at most 16 bytes (BLAKE2b personalisation)
COLUMN = "masked_first_layer"


def vector_masks(keys: Sequence[str], seeds: dict[str, bytes], me: str,
                 partners: Sequence[str], version: str, units: int) -> np.ndarray:
    """(n, units) ring words: sum_Q ±PRF(seed_PQ, version || j || key); one C call per peer
    and unit."""
    total = np.zeros((len(keys), units), dtype=np.uint64)
    for other, seed in seeds.items():
        sign = _sign(me, other, partners)
        for j in range(units):
            prf = item_hash(list(keys), key=seed + j.to_bytes(4, "little") + version.encode()[:44],
                            domain=MASK_DOMAIN)
            words = np.ascontiguousarray(prf[:, :8]).view(np.uint64).ravel()
            total[:, j] = RING64.add(total[:, j], words) if sign > 0 \
                else RING64.sub(total[:, j], words)
    return total


async def masked_first_layer_table(ctx: Context, partners: Sequence[str], keys: Sequence[str],
                                   partial: np.ndarray, version: str) -> pa.Table:
    """A partner's PIR table: key -> its masked first-layer partial (decimal ring words)."""
    seeds = await pairwise_seeds(ctx.scope(f"mlp-online-seeds/{version}"), partners)
    values = np.asarray(partial, dtype=np.float64)
    masked = RING64.add(RING64.encode(values, FRAC_BITS),
                        vector_masks(keys, seeds, ctx.party, partners, version, values.shape[1]))
    rows = [" ".join(str(int(w)) for w in row) for row in masked.tolist()]
    return pa.table({"key": pa.array([str(k) for k in keys]), COLUMN: pa.array(rows)})


def first_layer_partial(model: MLPModel, x: np.ndarray) -> np.ndarray:
    """This owner's x W1_o for raw feature rows (standardised as in training)."""
    if model.first_layer is None:
        raise VerticalError(f"party {model.party}: online MLP scoring needs a model trained "
                            f"with reveal: first-layer (the owner's block W1_o)")
    xs = (np.asarray(x, dtype=np.float64) - model.mean) / model.scale
    return np.asarray(xs @ model.first_layer)


async def publish_first_layer(ctx: Context, bank: str, partners: Sequence[str],
                              keys: Sequence[str], model: MLPModel, x: np.ndarray,
                              version: str, admit: Any = None) -> int:
    """Partner side: publish the masked partials of its rows and serve the bank's PIR."""
    from meshmpc.pir.api import database_from_table
    from meshmpc.pir.server import PirServer

    partial = first_layer_partial(model, x)
    table = await masked_first_layer_table(ctx, partners, keys, partial, version)
    server = PirServer(database_from_table(table, "key"), admit=admit)
    return await server.serve(ctx, bank)


class MLPOnlineSession:
    """The compute parties' joint forward pass of one applicant, from h1 - b1 at the bank."""

    def __init__(self, session: VerticalSession, model: MLPModel, bank: str) -> None:
        if model.shares is None:
            raise VerticalError(f"party {session.ctx.party}: the MLP model holds no weight "
                                f"shares; score with the compute parties of training")
        self.session, self.model, self.bank = session, model, bank
        backend = session.require_backend()
        self.theta = tensor_from_words(backend, model.shares["words"],
                                       int(model.shares["scale"]))
        config = MLPConfig(layers=tuple(model.layers), output=model.output,
                           classes=model.classes)
        self.net = PrecomputedFirstLayer(session, model.widths, None, config)
        self.decide = session.ctx.scope("mlp-online")
        self.count = 0

    async def score(self, partial: np.ndarray | None) -> float | None:
        """One joint forward pass; ``partial`` (layers[0],) at the bank, None elsewhere.
        Returns the logit at the bank."""
        backend = self.session.require_backend()
        h1 = self.model.layers[0]
        mine = None if partial is None else np.asarray(partial, dtype=np.float64).reshape(1, h1)
        self.net.partial = await backend.input(self.bank, mine, shape=(1, h1))
        z = await (await self.net.logits(self.theta, slice(0, 1))).reveal(to=self.bank)
        return None if z is None else float(np.asarray(z).ravel()[0])

    async def serve(self) -> int:
        """A compute party other than the bank: join each pass until the bank stops."""
        while True:
            order = await self.decide.recv(self.bank, f"next/{self.count}")
            if not isinstance(order, dict) or "go" not in order:
                raise VerticalError(f"party {self.bank} sent a malformed scoring order")
            self.count += 1
            if not order["go"]:
                return self.count - 1
            await self.score(None)

    async def announce(self, go: bool) -> None:
        """The bank: tell the other compute parties whether another pass follows."""
        others = [p for p in self.session.compute if p != self.bank]
        for party in others:
            await self.decide.send(party, f"next/{self.count}", {"go": go})
        self.count += 1


class MLPOnlineScorer:
    """The bank's scorer of single applicants by a first-layer-mode MLP."""

    def __init__(self, ctx: Context, online: MLPOnlineSession, partners: Sequence[str],
                 bank_model: MLPModel) -> None:
        self.ctx, self.online, self.partners = ctx, online, list(partners)
        self.bank_model = bank_model
        self._clients: dict[str, Any] = {}

    async def _client(self, partner: str) -> Any:
        from meshmpc.pir.client import PirClient

        if partner not in self._clients:
            client = PirClient(self.ctx, partner)
            await client.refresh()
            self._clients[partner] = client
        return self._clients[partner]

    async def partners_partial(self, key: object) -> np.ndarray:
        """sum_P m_P(key) decoded: the partners' summed first-layer partial."""
        units = self.bank_model.layers[0]
        total = np.zeros(units, dtype=np.uint64)
        missing = []
        for partner in self.partners:
            hit = (await (await self._client(partner)).query([key]))[0]
            if not hit.found or not hit.record:
                missing.append(partner)
                continue
            words = np.array([int(w) for w in json.loads(hit.record)[COLUMN].split()],
                             dtype=np.uint64)
            if words.shape != (units,):
                raise VerticalError(f"party {partner} published {words.size} first-layer "
                                    f"values, the model has {units} units")
            total = RING64.add(total, words)
        if missing:
            raise ScoreUnavailable(key, missing)
        return np.asarray(RING64.decode(total, FRAC_BITS), dtype=np.float64)

    async def score(self, key: object, bank_x: np.ndarray) -> float:
        """The applicant's output logit (sigmoid it for the probability)."""
        partial = await self.partners_partial(key)
        if self.bank_model.widths.get(self.bank_model.party, 0):
            partial = partial + first_layer_partial(self.bank_model,
                                                    np.asarray(bank_x).reshape(1, -1))[0]
        await self.online.announce(True)
        z = await self.online.score(partial)
        assert z is not None
        return z

    async def close(self) -> None:
        """Stop the compute parties' loop and end the PIR sessions."""
        from meshmpc.pir.client import PirClient

        await self.online.announce(False)
        for partner in self.partners:
            client = self._clients.get(partner) or PirClient(self.ctx, partner)
            await client.close()
        self._clients.clear()
