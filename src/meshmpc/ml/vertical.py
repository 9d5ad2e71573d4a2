"""The compute set-up shared by vertical training and joint scoring.

A :class:`VerticalSession` fixes, for one step, who computes and how:

- ``dishonest-majority`` (default): every party of the step computes in semi2k
  (N-party additive sharing, OT-made triples, no dealer; ``triples="he"`` makes
  the matrix triples of two compute parties by lattice HE instead, see
  :mod:`meshmpc.ml.he_triples`; ``triples="dealer"`` exists for tests and
  benchmarks only and must be named);
- ``honest-majority``: three compute parties run rep3 (the label holder and
  the first two other parties unless ``compute`` names them); any further
  party is an *input provider*: it secret-shares its feature matrix into the
  rep3 sharing once (seed-compressed: two of the three components travel as
  16-byte PRG seeds) and afterwards only receives what is revealed to it.

Products of an owner's plaintext matrix with a shared vector go through an
:class:`~meshmpc.ml.product.OwnerProduct` (the fast HE / rep3 products plug in
through ``make_product`` when installed); when none is available, or for an
input provider's matrix, the matrix is secret-shared once and the suite
multiplies (traffic of order n*d once, then the suite's product cost), except
a provider's streamed matrix in dishonest majority (``ml.logistic``): the
provider keeps it and serves HE products (:mod:`meshmpc.ml.product_he_provider`).

Security: semi-honest, static corruption; what a caller reveals is its
choice (see protocols/vertical-lr.md). Nothing received is used before the
mesh has authenticated its sender; shapes received are checked against the
shapes the step agreed on.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from meshmpc.errors import MeshMPCError
from meshmpc.linalg import SecretTensor, SecureBackend
from meshmpc.ml.coded import CodedMatrix
from meshmpc.ml.product import OwnerProduct
from meshmpc.mpc.factory import make_suite
from meshmpc.mpc.prg import Prg, fresh_key
from meshmpc.mpc.ring import RING64
from meshmpc.net import Context

SECURITY_LEVELS = ("dishonest-majority", "honest-majority")
PRODUCT_FACTORIES = ("meshmpc.ml.product", "meshmpc.ml.product_he",
                     "meshmpc.ml.product_rep3")
"""Modules searched, in order, for ``make_product(backend, security=...)``."""


class VerticalError(MeshMPCError, ValueError):
    """A vertical-learning step cannot run as configured (the message says why)."""


def compute_parties(parties: Sequence[str], label_holder: str, security: str,
                    compute: Sequence[str] | None = None, triples: str = "ot") -> list[str]:
    """The parties that hold shares, in cluster order.

    dishonest-majority: every party when there are two, or with the test-only
    dealer; otherwise by default the label holder and the first other party
    (two compute parties are the cheapest; ``compute`` may name more: OT-made
    truncation pairs work for any number), the others provide inputs.
    honest-majority: three parties, the label holder among them.
    """
    if security not in SECURITY_LEVELS:
        raise VerticalError(f"security must be one of {SECURITY_LEVELS}, got {security!r}")
    if len(parties) < 2:
        raise VerticalError("a vertical step needs at least two parties")
    others = [p for p in parties if p != label_holder]
    if compute:
        chosen = list(compute)
    elif security == "honest-majority":
        chosen = [label_holder, *others[:2]]
    else:
        chosen = list(parties) if len(parties) == 2 or triples == "dealer" \
            else [label_holder, others[0]]
    size_ok = len(chosen) == 3 if security == "honest-majority" else len(chosen) >= 2
    if not size_ok or len(set(chosen)) != len(chosen) or not set(chosen) <= set(parties):
        raise VerticalError(f"{security}: compute parties {chosen} must be distinct parties of "
                            f"the step {list(parties)} (three for honest-majority, at least "
                            f"two otherwise)")
    if label_holder not in chosen:
        raise VerticalError(f"the label holder {label_holder!r} must be a compute party")
    return [p for p in parties if p in chosen]


def load_product_factory(backend: SecureBackend, security: str) -> OwnerProduct | None:
    """The fastest installed owner-matrix product for ``security``, or None."""
    for name in PRODUCT_FACTORIES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        factory = getattr(module, "make_product", None)
        if factory is not None:
            product: OwnerProduct = factory(backend, security=security)
            return product
    return None


class VerticalSession:
    """One party's handle on the compute group of a vertical step."""

    def __init__(self, ctx: Context, compute: list[str], security: str,
                 backend: SecureBackend | None, product: OwnerProduct | None,
                 he_providers: bool = False) -> None:
        self.ctx = ctx
        self.compute = compute
        self.security = security
        self.backend = backend
        self.product = product
        self._shared: dict[str, SecretTensor] = {}
        self._replicated: dict[str, Any] = {}  # rep3: a provider's (x_i, x_{i+1}) operands
        self._combined: dict[str, SecretTensor] = {}
        self.he_providers = he_providers
        """dishonest-majority: a provider's streamed matrix is multiplied by HE products
        it serves (meshmpc.ml.product_he_provider), not secret-shared."""
        self._provided: dict[str, Any] = {}  # owner -> ProvidedMatrix
        self._provided_x: Any = None  # the provider's own matrix

    @classmethod
    async def open(cls, ctx: Context, label_holder: str, security: str = "dishonest-majority",
                   triples: str = "ot", compute: Sequence[str] | None = None,
                   product: str = "auto") -> VerticalSession:
        """Set up the suite among the compute parties (keys, base OTs)."""
        group = compute_parties(ctx.parties, label_holder, security, compute, triples)
        he_providers = security == "dishonest-majority" and product == "auto"
        if ctx.party not in group:
            return cls(ctx, group, security, None, None, he_providers)
        sub = ctx.subgroup(group).scope("suite")
        if security == "honest-majority":
            suite = await make_suite(sub, "rep3", triples="none")
        elif triples == "he":  # OT correlations, matrix triples from packed BFV products
            from meshmpc.ml.he_triples import make_he_suite

            suite = await make_he_suite(sub)
        else:
            suite = await make_suite(sub, "semi2k", triples=triples)
        backend = SecureBackend(suite)
        chosen = load_product_factory(backend, security) if product == "auto" else None
        return cls(ctx, group, security, backend, chosen, he_providers)

    @property
    def computes(self) -> bool:
        return self.backend is not None

    def require_backend(self) -> SecureBackend:
        if self.backend is None:
            raise VerticalError(f"party {self.ctx.party} is not a compute party")
        return self.backend

    # --- matrices -------------------------------------------------------------------
    def uses_product(self, owner: str) -> bool:
        """Whether ``owner``'s matrix goes through the OwnerProduct (else shared once)."""
        return self.product is not None and owner in self.compute

    async def register(self, owner: str, x: np.ndarray | CodedMatrix | None,
                       shape: tuple[int, int], stream: bool = False) -> None:
        """Make ``owner``'s matrix usable by :meth:`forward` / :meth:`backward`.

        With an OwnerProduct nothing happens (the owner keeps x); otherwise the
        owner secret-shares x once. Input providers call this too. ``stream``
        (honest majority): a provider's matrix is held as streamed rep3 operands
        usable by forward / backward only (not :meth:`shared_matrix`), so no party
        holds it as n x d words in memory; dishonest majority: the provider keeps it and
        serves HE products (:meth:`serve_providers`) until :meth:`release_providers`.
        """
        if self.uses_product(owner):
            return
        if owner in self.compute:
            if self.backend is not None:
                dense = None if x is None else np.asarray(x)
                self._shared[owner] = await self.backend.input(owner, dense, shape=shape)
            return
        if self.ctx.party != owner and not self.computes:
            return
        if stream and self.security == "honest-majority":
            await self._replicate_from_provider(owner, x, shape)
            return
        if stream and self.he_providers:
            self._provide_by_he(owner, x, shape)
            return
        tensor = await self._input_from_provider(owner, x, shape)
        if tensor is not None:
            self._shared[owner] = tensor

    async def _input_from_provider(self, owner: str, x: np.ndarray | CodedMatrix | None,
                                   shape: tuple[int, int]) -> SecretTensor | None:
        """A sharing of x made by a non-compute owner, seed-compressed.

        semi2k: compute party 0 gets x minus PRG(s_j) for j >= 1, the others
        the seeds s_j. rep3 (x = x0 + x1 + x2, party i holds (x_i, x_{i+1})):
        x0 and x1 travel as seeds, x2 as the array to the two parties holding it.
        """
        ctx = self.ctx.scope(f"provide/{owner}")
        if self.ctx.party == owner:
            if x is None or x.shape != shape:
                raise VerticalError(f"party {owner}: feature matrix must be {shape}")
            await self._send_provided(ctx, np.asarray(x), shape)
            return None
        backend = self.require_backend()
        ring, index = backend.ring, self.compute.index(self.ctx.party)

        def expand(seed: Any) -> np.ndarray:
            if not isinstance(seed, bytes | bytearray) or len(seed) != 16:
                raise VerticalError(f"party {owner} sent a malformed share seed")
            return ring.random(Prg(bytes(seed)), shape, 0)

        async def array() -> np.ndarray:
            got = await ctx.recv(owner, "rest")
            if not isinstance(got, np.ndarray) or got.shape != shape or got.dtype != np.uint64:
                raise VerticalError(f"party {owner} shared a matrix of the wrong shape or type; "
                                    f"expected {shape} uint64")
            return got

        share: Any
        if backend.suite.name == "semi2k":
            share = await array() if index == 0 else expand(await ctx.recv(owner, "seed"))
        elif index == 0:
            share = (expand(await ctx.recv(owner, "seed")), expand(await ctx.recv(owner, "seed1")))
        elif index == 1:
            share = (expand(await ctx.recv(owner, "seed1")), await array())
        else:
            share = (await array(), expand(await ctx.recv(owner, "seed")))
        return SecretTensor(backend, share, backend.f)

    async def _replicate_from_provider(self, owner: str, x: np.ndarray | CodedMatrix | None,
                                       shape: tuple[int, int]) -> None:
        """rep3: the provider's matrix replicated among the compute parties, streamed
        tile by tile both ways (two components from seeds, expanded per tile; the third
        in memory or a temporary file): bounded memory at every party."""
        from meshmpc.ml.product_rep3 import provide_matrix, receive_matrix

        ctx = self.ctx.scope(f"replicate/{owner}")
        if self.ctx.party == owner:
            if x is None or tuple(x.shape) != shape:
                raise VerticalError(f"party {owner}: feature matrix must be {shape}")
            await provide_matrix(ctx, self.compute, x, self._frac_bits(), owner)
            return
        index = self.compute.index(self.ctx.party)
        self._replicated[owner] = await receive_matrix(ctx, owner, index, shape)

    def _provide_by_he(self, owner: str, x: np.ndarray | CodedMatrix | None,
                       shape: tuple[int, int]) -> None:
        from meshmpc.ml.product_he_provider import ProvidedMatrix

        if self.ctx.party == owner:
            if x is None or tuple(x.shape) != shape:
                raise VerticalError(f"party {owner}: feature matrix must be {shape}")
            self._provided_x = x
        self._provided[owner] = ProvidedMatrix(self.ctx, owner, self.compute, shape,
                                               self._frac_bits(), self.backend)

    async def serve_providers(self) -> int:
        """An input provider: serve the compute parties' products of its matrix until
        they release it (returns the number served; 0 if it provides nothing)."""
        mine = self._provided.get(self.ctx.party)
        return 0 if mine is None else int(await mine.serve(self._provided_x))

    async def release_providers(self) -> None:
        """Compute parties: end every provider's :meth:`serve_providers` loop."""
        for provided in self._provided.values():
            await provided.release()

    async def _send_provided(self, ctx: Context, x: np.ndarray, shape: tuple[int, int]) -> None:
        encoded = RING64.encode(x, self._frac_bits())
        if self.security == "dishonest-majority":
            rest = encoded
            for party in self.compute[1:]:
                seed = fresh_key()
                await ctx.send(party, "seed", seed)
                rest = RING64.sub(rest, RING64.random(Prg(seed), shape, 0))
            await ctx.send(self.compute[0], "rest", rest)
            return
        s0, s1 = fresh_key(), fresh_key()
        x2 = RING64.sub(RING64.sub(encoded, RING64.random(Prg(s0), shape, 0)),
                        RING64.random(Prg(s1), shape, 0))
        c0, c1, c2 = self.compute
        await ctx.send(c0, "seed", s0)
        await ctx.send(c0, "seed1", s1)
        await ctx.send(c1, "seed1", s1)
        await ctx.send(c1, "rest", x2)
        await ctx.send(c2, "rest", x2)
        await ctx.send(c2, "seed", s0)

    async def share_vector(self, owner: str, values: np.ndarray | None,
                           size: int) -> SecretTensor | None:
        """A sharing of ``owner``'s private vector among the compute parties (a compute
        owner inputs it; an input provider sends it seed-compressed). Returns the
        shares at the compute parties, None elsewhere; the owner and the compute
        parties call this, in the same order."""
        if owner in self.compute:
            if self.backend is None:
                return None
            return await self.backend.input(owner, values, shape=(size,))
        if self.ctx.party != owner and not self.computes:
            return None
        row = None if values is None else np.asarray(values, dtype=np.float64).reshape(1, size)
        tensor = await self._input_from_provider(owner, row, (1, size))
        return None if tensor is None else tensor.reshape((size,))

    def _frac_bits(self) -> int:
        from meshmpc.mpc.fixedpoint import FixedPoint
        return FixedPoint().f

    def shared_matrix(self, owner: str) -> SecretTensor:
        return self._shared[owner]

    def combined(self, owners: Sequence[str]) -> SecretTensor | None:
        """The owners' shared matrices side by side (one product per pass instead of one
        per owner), when every owner's matrix was shared; else None."""
        if not owners or any(o not in self._shared for o in owners):
            return None
        key = "|".join(owners)
        if key not in self._combined:
            first, *rest = (self._shared[o] for o in owners)
            self._combined[key] = first.concat(rest, axis=1) if rest else first
        return self._combined[key]

    async def forward(self, owner: str, x: np.ndarray | CodedMatrix | None, rows: slice,
                      w: SecretTensor, width: int) -> SecretTensor:
        """<X_owner[rows] @ w> (compute parties only)."""
        if self.uses_product(owner):
            assert self.product is not None
            n = rows.stop - rows.start
            part = x[rows] if x is not None and self.ctx.party == owner else None
            return await self.product.matvec(owner, part, w, (n, width))
        if owner in self._provided:
            return await self._provided[owner].matvec(rows, w)
        if owner in self._replicated:
            from meshmpc.ml.product_rep3 import replicated_product
            return await replicated_product(self.require_backend(), self._replicated[owner],
                                            rows, w, transpose=False)
        return await (self._shared[owner][rows] @ w)

    async def backward(self, owner: str, x: np.ndarray | CodedMatrix | None, rows: slice,
                       r: SecretTensor, width: int) -> SecretTensor:
        """<X_owner[rows]^T @ r> (compute parties only)."""
        if self.uses_product(owner):
            assert self.product is not None
            n = rows.stop - rows.start
            part = x[rows] if x is not None and self.ctx.party == owner else None
            return await self.product.rmatvec(owner, part, r, (n, width))
        if owner in self._provided:
            return await self._provided[owner].rmatvec(rows, r)
        if owner in self._replicated:
            from meshmpc.ml.product_rep3 import replicated_product
            return await replicated_product(self.require_backend(), self._replicated[owner],
                                            rows, r, transpose=True)
        return await (self._shared[owner][rows].T @ r)

    async def products(self, x: np.ndarray | CodedMatrix | None, rows: slice,
                       calls: Sequence[tuple[str, SecretTensor, int]],
                       transpose: bool) -> list[SecretTensor]:
        """:meth:`forward` (or :meth:`backward`) for several (owner, vector, width) at once:
        the providers' HE products run concurrently with the other owners' (those one
        after another), then the providers' shares are truncated in order."""
        provided = {i for i, call in enumerate(calls) if call[0] in self._provided}
        op = "rmatvec" if transpose else "matvec"
        step = self.backward if transpose else self.forward

        async def others() -> dict[int, SecretTensor]:
            return {i: await step(owner, x, rows, v, width)
                    for i, (owner, v, width) in enumerate(calls) if i not in provided}

        order = sorted(provided)
        done, *raws = await asyncio.gather(
            others(), *(self._provided[calls[i][0]].raw(op, rows, calls[i][1]) for i in order))
        results = dict(done)
        for i, raw in zip(order, raws, strict=True):
            results[i] = await self._provided[calls[i][0]].finish(raw, calls[i][1])
        return [results[i] for i in range(len(calls))]

    # --- outputs --------------------------------------------------------------------
    async def reveal_to(self, tensor: SecretTensor | None, party: str,
                        shape: tuple[int, ...]) -> np.ndarray | None:
        """Open a shared tensor to one party (a compute party or an input provider)."""
        if party in self.compute:
            if tensor is None:
                return None
            return await tensor.reveal(to=party)
        ctx = self.ctx.scope(f"reveal/{party}")
        if self.ctx.party == party:
            parts = {p: await ctx.recv(p, "part") for p in self.compute}
            total = np.zeros(shape, dtype=np.uint64)
            for p in self.compute:
                part = parts[p]
                if not isinstance(part, np.ndarray) or part.shape != shape:
                    raise VerticalError(f"party {p} sent a share of the wrong shape")
                total = np.add(total, part.astype(np.uint64), dtype=np.uint64)
            return np.asarray(RING64.decode(total, self._frac_bits()))
        if tensor is None:
            return None
        backend = self.require_backend()
        first = backend.suite.components(tensor.rescale(backend.f).share)[0]
        await ctx.send(party, "part", np.ascontiguousarray(first))
        return None


def share_words(tensor: SecretTensor) -> list[list[int]]:
    """This party's share components as plain integers (for a strict-mode model file)."""
    comps = tensor.suite.components(tensor.share)
    return [np.asarray(c, dtype=np.uint64).ravel().tolist() for c in comps]


def tensor_from_words(backend: SecureBackend, words: Sequence[Sequence[int]],
                      scale: int) -> SecretTensor:
    """Rebuild a SecretTensor saved by :func:`share_words` (same suite and parties)."""
    arrays = [np.asarray(w, dtype=np.uint64) for w in words]
    share: Any = arrays[0] if backend.suite.name == "semi2k" else tuple(arrays)
    return SecretTensor(backend, share, scale)
