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

What each party learns (``mode="summed"``, the default). Partners: nothing
about who is scored (keyword PIR; they see that a query arrived). Compute
parties other than the bank: shares only (they learn that one score was
computed). The bank: the score, and the partners' summed first-layer partial
sum_P x_P W1_P (layers[0] values; each m_P alone is uniform when there are
two or more partners, so no single partner's vector), a projection of the
partners' features by weights the bank does not know.

``mode="shared"``: partner P masks its partial with its own fresh uniform
words R_P(k) (no pairwise masks) and adds to the record a sealed box
(libsodium's crypto_box_seal, X25519 + XSalsa20-Poly1305) of R_P(k) for its
*mask holder*, the first compute party other than P and the bank. The bank
retrieves (m_P(k), box) by PIR, forwards each box to its holder, and inputs
sum_P m_P(k) plus its own part; each holder inputs -sum R_P(k). The shares sum
to h1 - b1; the bank sees values masked by R_P it does not know and
ciphertexts, so **it learns the score only**; a holder decrypts uniform words
R_P(k) it cannot link to k (P's table is P's). A holder and its partner
together would recognise k (two corruptions: outside rep3's model). Needs a
holder for every partner (three compute parties, e.g. rep3 bank, gov, fin).
A fresh ``version`` redraws every mask. A key some partner lacks:
:class:`~meshmpc.ml.predict.ScoreUnavailable` names the partners.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from meshmpc.crypto.hashing import item_hash
from meshmpc.linalg import SecretTensor
from meshmpc.ml.mlp import MLPConfig
from meshmpc.ml.mlp_model import MLPModel, PrecomputedFirstLayer
from meshmpc.ml.predict import (
    FRAC_BITS,
    ScoreUnavailable,
    _sign,
    cached_pir_client,
    pairwise_seeds,
)
from meshmpc.ml.vertical import VerticalError, VerticalSession, tensor_from_words
from meshmpc.mpc.prg import Prg, fresh_key
from meshmpc.mpc.ring import RING64
from meshmpc.net import Context

MASK_DOMAIN = b"meshmpc.mlp1.v1"  # at most 16 bytes (BLAKE2b personalisation)
COLUMN = "masked_first_layer"
BOX_COLUMN = "mask_box"
MODES = ("summed", "shared")


def mask_holder(partner: str, compute: Sequence[str], bank: str) -> str:
    """The compute party that receives ``partner``'s masks in mode "shared"."""
    for party in compute:
        if party not in (partner, bank):
            return party
    raise VerticalError(f"online MLP scoring with mode 'shared' needs a compute party other "
                        f"than the bank and {partner} to hold {partner}'s masks; compute "
                        f"parties are {list(compute)} (use three, or mode 'summed')")


async def exchange_box_keys(ctx: Context, compute: Sequence[str], partners: Sequence[str],
                            bank: str) -> tuple[Any, bytes | None]:
    """Mask holders send their X25519 public keys to their partners (over the
    authenticated mesh). Returns (this party's private key if it holds masks, its own
    holder's public key if it is a partner)."""
    from nacl.public import PrivateKey

    scope, me = ctx.scope("mlp-online-keys"), ctx.party
    holders = {p: mask_holder(p, compute, bank) for p in partners}
    secret = PrivateKey.generate() if me in holders.values() else None
    if secret is not None:
        for partner, holder in holders.items():
            if holder == me:
                await scope.send(partner, "pk", bytes(secret.public_key))
    if me not in holders:
        return secret, None
    key = await scope.recv(holders[me], "pk")
    if not isinstance(key, bytes | bytearray) or len(key) != 32:
        raise VerticalError(f"party {holders[me]} sent a malformed mask-holder key")
    return secret, bytes(key)


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


def boxed_first_layer_table(keys: Sequence[str], partial: np.ndarray,
                            holder_key: bytes) -> pa.Table:
    """Mode "shared": key -> (partial + R, sealed box of R for the mask holder)."""
    from nacl.public import PublicKey, SealedBox

    values = np.asarray(partial, dtype=np.float64)
    masks = RING64.random(Prg(fresh_key()), values.shape, 0)
    masked = RING64.add(RING64.encode(values, FRAC_BITS), masks)
    box = SealedBox(PublicKey(holder_key))
    rows = [" ".join(str(int(w)) for w in row) for row in masked.tolist()]
    boxes = [box.encrypt(np.ascontiguousarray(r).tobytes()).hex() for r in masks]
    return pa.table({"key": pa.array([str(k) for k in keys]), COLUMN: pa.array(rows),
                     BOX_COLUMN: pa.array(boxes)})


async def publish_first_layer(ctx: Context, bank: str, partners: Sequence[str],
                              keys: Sequence[str], model: MLPModel, x: np.ndarray,
                              version: str, admit: Any = None, mode: str = "summed",
                              holder_key: bytes | None = None) -> int:
    """Partner side: publish the masked partials of its rows and serve the bank's PIR
    (``holder_key`` from :func:`exchange_box_keys` in mode "shared")."""
    from meshmpc.pir.api import database_from_table
    from meshmpc.pir.server import PirServer

    partial = first_layer_partial(model, x)
    if mode == "shared":
        if holder_key is None:
            raise VerticalError(f"party {ctx.party}: mode 'shared' needs its mask holder's key")
        table = boxed_first_layer_table(keys, partial, holder_key)
    else:
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
        self.box_key: Any = None
        """A mask holder's X25519 private key (mode "shared", from exchange_box_keys)."""

    async def score(self, words: np.ndarray | None,
                    boxes: dict[str, list[str]] | None = None) -> float | None:
        """One joint forward pass from h1 - b1 as ring words (scale 2^-16): the bank's
        ``words`` (mode "shared": with each holder's boxes), the holders' -sum R_P.
        Returns the logit at the bank."""
        backend = self.session.require_backend()
        suite, h1, me = backend.suite, self.model.layers[0], self.session.ctx.party
        if me == self.bank:
            others = [p for p in self.session.compute if p != self.bank]
            for party in others:
                await self.decide.send(party, f"boxes/{self.count}", (boxes or {}).get(party, []))
        else:
            words = self._unbox(await self.decide.recv(self.bank, f"boxes/{self.count}"))
        total = None
        for party in self.session.compute:
            part = await suite.input(party, words if party == me else None, shape=(1, h1))
            total = part if total is None else suite.add(total, part)
        self.net.partial = SecretTensor(backend, total, FRAC_BITS)
        z = await (await self.net.logits(self.theta, slice(0, 1))).reveal(to=self.bank)
        return None if z is None else float(np.asarray(z).ravel()[0])

    def _unbox(self, boxes: Any) -> np.ndarray:
        """A holder's input: minus the sum of the masks in its boxes (zeros if none)."""
        h1 = self.model.layers[0]
        total = np.zeros((1, h1), dtype=np.uint64)
        if not isinstance(boxes, list) or not all(isinstance(b, str) for b in boxes):
            raise VerticalError(f"party {self.bank} sent malformed mask boxes")
        for box in boxes:
            if self.box_key is None:
                raise VerticalError(f"party {self.session.ctx.party} holds no mask key")
            from nacl.exceptions import CryptoError
            from nacl.public import SealedBox

            try:
                raw = SealedBox(self.box_key).decrypt(bytes.fromhex(box))
            except (CryptoError, ValueError) as exc:
                raise VerticalError(f"a mask box forwarded by {self.bank} does not open "
                                    f"({exc})") from exc
            if len(raw) != 8 * h1:
                raise VerticalError(f"a mask box forwarded by {self.bank} holds {len(raw)} "
                                    f"bytes, expected {8 * h1}")
            total = RING64.sub(total, np.frombuffer(raw, dtype=np.uint64).reshape(1, h1))
        return total

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
                 bank_model: MLPModel, mode: str = "summed") -> None:
        if mode not in MODES:
            raise VerticalError(f"online MLP scoring mode must be one of {MODES}, got {mode!r}")
        self.ctx, self.online, self.partners = ctx, online, list(partners)
        self.bank_model, self.mode = bank_model, mode
        self._clients: dict[str, Any] = {}

    async def _client(self, partner: str) -> Any:
        return await cached_pir_client(self.ctx, self._clients, partner)

    async def partners_partial(self, key: object) -> tuple[np.ndarray, dict[str, list[str]]]:
        """sum_P m_P(key) as ring words, and (mode "shared") each holder's boxes."""
        units = self.bank_model.layers[0]
        total = np.zeros(units, dtype=np.uint64)
        boxes: dict[str, list[str]] = {}
        missing = []
        for partner in self.partners:
            hit = (await (await self._client(partner)).query([key]))[0]
            if not hit.found or not hit.record:
                missing.append(partner)
                continue
            record = json.loads(hit.record)
            words = np.array([int(w) for w in record[COLUMN].split()], dtype=np.uint64)
            if words.shape != (units,):
                raise VerticalError(f"party {partner} published {words.size} first-layer "
                                    f"values, the model has {units} units")
            total = RING64.add(total, words)
            if self.mode == "shared":
                holder = mask_holder(partner, self.online.session.compute, self.online.bank)
                boxes.setdefault(holder, []).append(str(record[BOX_COLUMN]))
        if missing:
            raise ScoreUnavailable(key, missing)
        return total, boxes

    async def score(self, key: object, bank_x: np.ndarray) -> float:
        """The applicant's output logit (sigmoid it for the probability)."""
        words, boxes = await self.partners_partial(key)
        if self.bank_model.widths.get(self.bank_model.party, 0):
            own = first_layer_partial(self.bank_model, np.asarray(bank_x).reshape(1, -1))[0]
            words = RING64.add(words, RING64.encode(own, FRAC_BITS))
        await self.online.announce(True)
        z = await self.online.score(words.reshape(1, -1), boxes)
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
