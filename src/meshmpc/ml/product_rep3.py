"""Honest-majority owner-matrix product over rep3 (three compute parties).

Security model: semi-honest, at most one of the three parties corrupted (rep3's
model), no dealer. The owner o (one of the three) splits its encoded matrix as
X = R + D: R is regenerated from a PRG seed it shares with the next party
(o+1), and D = X - R is sent once to the previous party (o+2); the split is
remembered, so later products by the same matrix (every step of a training
loop) send nothing but the reshare. A product is local arithmetic on one n x d
operand per party,

    z_o = X (v_o + v_{o+1}),   z_{o+1} = R v_{o+2},   z_{o+2} = D v_{o+2},

(each party holds the components it uses), a zero sharing and rep3's reshare
of the n outputs: X v = z_o + z_{o+1} + z_{o+2}. The next party sees R only, the
previous party D only (uniform, independent of X), the owner its own shares of
v; the reshare is masked by the zero sharing. See protocols/vertical.md.
"""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from meshmpc import _core
from meshmpc.linalg import SecretTensor, SecureBackend
from meshmpc.ml.coded import CodedMatrix
from meshmpc.ml.product import MatrixLike, OwnerProduct, one_hot
from meshmpc.mpc.errors import MpcError
from meshmpc.mpc.fixedpoint import FixedPoint
from meshmpc.mpc.prg import Prg, fresh_key
from meshmpc.mpc.rep3 import Rep3
from meshmpc.net import Context

TILE_WORDS = 1 << 18  # words per tile of rows (2 MiB: regenerated R stays in cache)
TILES_PER_MESSAGE = 16  # tiles of D per message of the one-time split
CACHE = 4  # matrices whose split is remembered


class Rep3Product(OwnerProduct):
    """Owner-matrix products over a rep3 backend (three compute parties).

    The owner is one of the three, or an *input provider*: a further party of the
    job (pass ``ctx``, the job's Context, and ``backend=None`` there; the compute
    parties pass the same ``ctx`` beside their rep3 backend; the compute parties
    are then the job's other three, and ``frac_bits`` at the provider must be the
    backend's). Every party of the job calls every product in the same order; an
    input provider gets ``None``.
    """

    def __init__(self, backend: SecureBackend | None, ctx: Context | None = None,
                 frac_bits: int | None = None) -> None:
        if backend is None and ctx is None:
            raise MpcError("an input provider of the rep3 product passes the job's ctx")
        if backend is not None and not isinstance(backend.suite, Rep3):
            raise MpcError("the honest-majority product needs a rep3 backend (three parties)")
        self.backend = backend  # type: ignore[assignment]  # None at an input provider
        self.suite: Rep3 | None = backend.suite if backend is not None else None  # type: ignore[assignment]
        self.job_ctx: Context = ctx if ctx is not None else backend.suite.ctx  # type: ignore[union-attr]
        self._owned: OrderedDict[int, tuple[Any, ...]] = OrderedDict()
        self._held: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self._handles = 0
        self._calls = 0
        self._frac = backend.f if backend is not None else FixedPoint(frac_bits=frac_bits).f

    @property
    def party(self) -> str:
        return self.job_ctx.party

    async def matvec(self, owner: str, x: MatrixLike | None, v: SecretTensor,
                     shape: tuple[int, int], integer: bool = False) -> SecretTensor:
        return await self._product(owner, x, v, shape, integer, transpose=False)

    async def rmatvec(self, owner: str, x: MatrixLike | None, v: SecretTensor,
                      shape: tuple[int, int], integer: bool = False) -> SecretTensor:
        return await self._product(owner, x, v, shape, integer, transpose=True)

    async def grouped_sum(self, owner: str, groups: np.ndarray | None, v: SecretTensor,
                          n_groups: Sequence[int]) -> SecretTensor:
        if self.suite is None:  # an input provider: only the owner's one-hot matters
            onehot = one_hot(groups, n_groups) if self.party == owner and groups is not None \
                else None
            n = onehot.shape[0] if onehot is not None else 0
            return await self.rmatvec(owner, onehot, v, (n, int(sum(n_groups))), integer=True)
        return await super().grouped_sum(owner, groups, v, n_groups)

    async def _product(self, owner: str, x: Any, v: SecretTensor, shape: tuple[int, int],
                       integer: bool, transpose: bool) -> SecretTensor:
        self._calls += 1
        if owner not in self.job_ctx.parties:
            raise MpcError(f"unknown party {owner!r}; the parties are {self.job_ctx.parties}")
        suite = self.suite
        if suite is None:  # an input provider
            if self.party == owner:
                await self._provide(x, shape, integer)
            return cast(SecretTensor, None)
        n, d = shape
        inner = n if transpose else d
        if v.shape[0] != inner:
            raise MpcError(f"party {self.party}: the vector has {v.shape[0]} rows, the "
                           f"product by {owner}'s {n} x {d} matrix needs {inner}")
        suite.next_nonce()
        v0, v1 = (a.reshape(inner, -1) for a in v.share)
        if owner in suite.ctx.parties:
            role = (suite.ctx.parties.index(self.party) - suite.ctx.parties.index(owner)) % 3
            operand = await self._operand(owner, x, shape, role, integer)
            vec = v0 if role == 2 else v1 if role == 1 else v0 + v1
            z = _stream_product(operand, vec, transpose)
        else:  # replicated X from the input provider: x_i (v_i + v_{i+1}) + x_{i+1} v_i
            first, second = await self._receive_replicated(owner, shape)
            z = _stream_product(first, v0 + v1, transpose)
            z += _stream_product(second, v0, transpose)
        return await _finish(self.backend, z, v, d if transpose else n, integer)

    # --- an input provider's matrix: replicated, two of three components from seeds ----
    async def _provide(self, x: Any, shape: tuple[int, int], integer: bool) -> None:
        """x_0 = PRG(s0), x_1 = PRG(s1), x_2 = X - x_0 - x_1 streamed to the two parties
        holding it; party i holds (x_i, x_{i+1}). Remembered like an owner's split."""
        if x is None or tuple(x.shape) != tuple(shape):
            raise MpcError(f"party {self.party}: pass the {shape} matrix to the product you "
                           f"provide")
        ctx, tag = self.job_ctx.scope("rep3-provide"), f"x/{self._calls}"
        compute = [p for p in self.job_ctx.parties if p != self.party][:3]
        entry = self._owned.get(id(x))
        if entry is not None and entry[0] is x:
            for p in compute:
                await ctx.send(p, tag, {"handle": entry[1]})
            return
        self._handles += 1
        _put(self._owned, id(x), (x, self._handles))
        s0, s1 = fresh_key(), fresh_key()
        seeds = {compute[0]: [s0, s1], compute[1]: [s1], compute[2]: [s0]}
        for p in compute:
            await ctx.send(p, tag, {"handle": self._handles, "seeds": seeds[p]})
        encoded = _Encoded(x, 0 if integer else self._frac, self.party)
        await _stream_third_share(ctx, compute[1:], tag, encoded, s0, s1, shape)

    async def _receive_replicated(self, owner: str, shape: tuple[int, int]) -> Any:
        assert self.suite is not None
        ctx, tag = self.job_ctx.scope("rep3-provide"), f"x/{self._calls}"
        msg = await ctx.recv(owner, tag)
        if not isinstance(msg, dict) or not isinstance(msg.get("handle"), int):
            raise MpcError(f"party {owner}: sent a malformed matrix header")
        key = (owner, msg["handle"])
        if "seeds" in msg:
            seeds = msg["seeds"]
            if not isinstance(seeds, list):
                raise MpcError(f"party {owner}: sent malformed matrix seeds")
            seeded = [_Seeded(_check_seed(sd, owner), shape) for sd in seeds]
            i = self.suite.ctx.index
            if i == 0:
                pair: tuple[_Operand, _Operand] = (seeded[0], seeded[1])
            else:
                stored = await _receive_difference(ctx, owner, tag, shape)
                pair = (seeded[0], stored) if i == 1 else (stored, seeded[0])
            _put(self._held, key, pair)
        held = self._held.get(key)
        if held is None:
            raise MpcError(f"party {self.party}: {owner} refers to a matrix this party no "
                           "longer holds; call with a fresh matrix")
        return held

    async def _operand(self, owner: str, x: Any, shape: tuple[int, int], role: int,
                       integer: bool) -> _Operand:
        """This party's n x d operand: X (owner), R from the seed (next), D (previous)."""
        assert self.suite is not None and self.backend is not None
        ctx = self.suite.ctx.scope("rep3-product")
        tag = self.suite.tag("m")
        parties = self.suite.ctx.parties
        nxt = parties[(parties.index(owner) + 1) % 3]
        prev = parties[(parties.index(owner) + 2) % 3]
        if role == 0:
            if x is None or tuple(x.shape) != tuple(shape):
                raise MpcError(f"party {owner}: pass the {shape} matrix to the product you own")
            scale = 0 if integer else self.backend.f
            base, lo = row_window(x)
            window = {"rows": list(base.shape), "lo": lo}
            entry = self._owned.get(id(base))
            if entry is not None and len(entry) == 4 and entry[0] is base and entry[3] == scale:
                await ctx.send(nxt, tag, {"handle": entry[1], **window})
                await ctx.send(prev, tag, {"handle": entry[1], **window})
                return _Encoded(x, scale, owner)
            self._handles += 1
            seed = fresh_key()
            _put(self._owned, id(base), (base, self._handles, seed, scale))
            await ctx.send(nxt, tag, {"handle": self._handles, "seed": seed, **window})
            await ctx.send(prev, tag, {"handle": self._handles, "d": True, **window})
            full = (int(base.shape[0]), int(base.shape[1]))
            await _send_difference(ctx, prev, tag, _Encoded(base, scale, owner), seed, full)
            return _Encoded(x, scale, owner)
        msg = await ctx.recv(owner, tag)
        if not isinstance(msg, dict) or not isinstance(msg.get("handle"), int):
            raise MpcError(f"party {owner}: sent a malformed matrix header")
        full, lo = _window_of(msg, shape, owner)
        key = (owner, msg["handle"])
        if role == 1 and "seed" in msg:
            _put(self._held, key, _Seeded(_check_seed(msg.get("seed"), owner), full))
        elif role == 2 and msg.get("d") is True:
            _put(self._held, key, await _receive_difference(ctx, owner, tag, full))
        held = self._held.get(key)
        if held is None or held.shape != full:
            raise MpcError(f"party {self.party}: {owner} refers to a matrix split this party "
                           "no longer holds; call with a fresh matrix")
        return held if (lo, shape) == (0, full) else _Window(held, lo, shape)


def row_window(x: Any) -> tuple[Any, int]:
    """(base, first row) when x is a block of whole rows of a C-ordered 2-D array (a
    mini-batch ``x[lo:hi]``, also of a :class:`CodedMatrix`), so the base is split once for
    every batch; else (x, 0)."""
    if isinstance(x, CodedMatrix):
        return (x.parent, x.lo) if x.parent is not None else (x, 0)
    base = getattr(x, "base", None)
    if not (isinstance(x, np.ndarray) and isinstance(base, np.ndarray)) or x.ndim != 2 \
            or base.ndim != 2 or not base.flags.c_contiguous or x.strides != base.strides \
            or x.shape[1] != base.shape[1] or x.dtype != base.dtype or base.shape[0] == 0:
        return x, 0
    offset = x.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    stride = base.strides[0]
    if stride <= 0 or offset % stride or not 0 <= offset // stride <= base.shape[0] - x.shape[0]:
        return x, 0
    return base, offset // stride


def _window_of(msg: dict[str, Any], shape: tuple[int, int], owner: str
               ) -> tuple[tuple[int, int], int]:
    """The split matrix's full shape and the first row of this product's rows, checked."""
    rows, lo = msg.get("rows", list(shape)), msg.get("lo", 0)
    if not (isinstance(rows, list) and len(rows) == 2 and all(isinstance(r, int) for r in rows)
            and isinstance(lo, int) and lo >= 0 and lo + shape[0] <= rows[0]
            and rows[1] == shape[1]):
        raise MpcError(f"party {owner}: sent a matrix header whose rows do not fit the "
                       f"{shape} product")
    return (rows[0], rows[1]), lo


class _Operand:
    """Rows of one party's n x d operand, drawn in tiles of ``tile_rows(shape)`` rows."""

    shape: tuple[int, int]

    def rows(self, lo: int, hi: int) -> np.ndarray:
        raise NotImplementedError

    def any_rows(self, lo: int, hi: int) -> np.ndarray:
        """Rows lo..hi, whatever the tiles (the split's own tiles are the full matrix's)."""
        return self.rows(lo, hi)


class _Window(_Operand):
    """Rows lo .. lo + shape[0] of a held split (a mini-batch of the matrix split once)."""

    def __init__(self, held: _Operand, lo: int, shape: tuple[int, int]) -> None:
        self.held, self.lo, self.shape = held, lo, shape

    def rows(self, lo: int, hi: int) -> np.ndarray:
        return self.held.any_rows(self.lo + lo, self.lo + hi)


class _Encoded(_Operand):
    """The owner's X; its product is encoded on the fly (one C pass over float64 rows)."""

    def __init__(self, x: Any, scale: int, owner: str) -> None:
        self.x, self.scale, self.owner = x, scale, owner
        self.shape = (int(x.shape[0]), int(x.shape[1]))

    def float_rows(self, lo: int, hi: int) -> np.ndarray:
        return np.ascontiguousarray(self.x[lo:hi], dtype=np.float64)

    def product(self, lo: int, hi: int, vec: np.ndarray, out: np.ndarray) -> None:
        try:
            _core.ring64_matmul_fixed(self.float_rows(lo, hi), vec, out, 2.0 ** self.scale,
                                      2.0 ** 62)
        except ValueError as exc:
            raise MpcError(f"party {self.owner}: a matrix entry in rows {lo}..{hi} is not "
                           f"finite or too large for Z_2^64 at scale 2^{self.scale}") from exc

    def rows(self, lo: int, hi: int) -> np.ndarray:
        scaled = np.rint(self.float_rows(lo, hi) * 2.0 ** self.scale)
        if scaled.size and not float(np.max(np.abs(scaled))) < 2.0 ** 62:
            raise MpcError(f"party {self.owner}: a matrix entry in rows {lo}..{hi} is not "
                           f"finite or too large for Z_2^64 at scale 2^{self.scale}")
        return scaled.astype(np.int64).view(np.uint64)


class _Seeded(_Operand):
    """R, regenerated tile by tile: tile t of rows is PRG draw (nonce t)."""

    def __init__(self, seed: bytes, shape: tuple[int, int]) -> None:
        self.prg, self.shape = Prg(seed), shape

    def rows(self, lo: int, hi: int) -> np.ndarray:
        step = tile_rows(self.shape)
        if lo % step or hi - lo > step:
            raise MpcError("seeded rows are drawn in whole tiles")
        return self.prg.words((hi - lo) * self.shape[1], lo // step, 0).reshape(
            hi - lo, self.shape[1])

    def any_rows(self, lo: int, hi: int) -> np.ndarray:
        step = tile_rows(self.shape)
        first = lo - lo % step
        parts = [self.rows(a, min(a + step, self.shape[0])) for a in range(first, hi, step)]
        block = np.concatenate(parts) if parts else np.zeros((0, self.shape[1]), np.uint64)
        return block[lo - first:hi - first]


class _Stored(_Operand):
    """D, in memory when small, else in an anonymous temporary file read back by tiles."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.shape = shape
        nbytes = shape[0] * shape[1] * 8
        self.memory = np.empty(shape, np.uint64) if nbytes <= memory_limit() else None
        # closed (and deleted) when the split is evicted from the cache and collected
        self.file = None if self.memory is not None else tempfile.TemporaryFile()  # noqa: SIM115

    def write(self, lo: int, block: np.ndarray) -> None:
        if self.memory is not None:
            self.memory[lo:lo + block.shape[0]] = block
            return
        assert self.file is not None
        self.file.seek(lo * self.shape[1] * 8)
        self.file.write(np.ascontiguousarray(block).data)

    def rows(self, lo: int, hi: int) -> np.ndarray:
        if self.memory is not None:
            return self.memory[lo:hi]
        assert self.file is not None
        out = np.empty((hi - lo, self.shape[1]), np.uint64)
        self.file.seek(lo * self.shape[1] * 8)
        if self.file.readinto(out.data) != out.nbytes:
            raise MpcError("rep3 product: the stored matrix share is truncated")
        return out


def memory_limit() -> int:
    """Bytes of D kept in memory (MESHMPC_REP3_MEMORY_MB, default 1024); beyond: a file."""
    return int(os.environ.get("MESHMPC_REP3_MEMORY_MB", "1024")) << 20


def tile_rows(shape: tuple[int, int]) -> int:
    return max(1, TILE_WORDS // max(shape[1], 1))


def _tiles(shape: tuple[int, int]) -> list[tuple[int, int]]:
    step = tile_rows(shape)
    return [(lo, min(lo + step, shape[0])) for lo in range(0, shape[0], step)]


async def _send_difference(ctx: Any, prev: str, tag: str, encoded: _Encoded, seed: bytes,
                           shape: tuple[int, int]) -> None:
    """Stream D = X - R to the previous party, a message per group of tiles."""
    seeded = _Seeded(seed, shape)
    tiles = _tiles(shape)
    for g in range(0, len(tiles), TILES_PER_MESSAGE):
        group = tiles[g:g + TILES_PER_MESSAGE]
        lo = group[0][0]
        block = np.concatenate([encoded.rows(a, b) - seeded.rows(a, b) for a, b in group])
        await ctx.send(prev, f"{tag}/d/{lo}", block)
        del block


async def _receive_difference(ctx: Any, owner: str, tag: str,
                              shape: tuple[int, int]) -> _Stored:
    stored, tiles = _Stored(shape), _tiles(shape)
    for g in range(0, len(tiles), TILES_PER_MESSAGE):
        lo, hi = tiles[g][0], tiles[min(g + TILES_PER_MESSAGE, len(tiles)) - 1][1]
        block = np.asarray(await ctx.recv(owner, f"{tag}/d/{lo}"))
        if block.dtype != np.uint64 or block.shape != (hi - lo, shape[1]):
            raise MpcError(f"party {owner}: sent a matrix share block of shape {block.shape}, "
                           f"expected {(hi - lo, shape[1])}")
        stored.write(lo, block)
    return stored


def _stream_product(operand: _Operand, vec: np.ndarray, transpose: bool) -> np.ndarray:
    """operand @ vec (or operand^T @ vec) mod 2^64, tile by tile in C."""
    n, d = operand.shape
    vec = np.ascontiguousarray(vec, dtype=np.uint64)
    out = np.zeros((d if transpose else n, vec.shape[1]), dtype=np.uint64)
    part = np.empty((d, vec.shape[1]), dtype=np.uint64) if transpose else None
    for lo, hi in _tiles((n, d)):
        if part is None and isinstance(operand, _Encoded):
            operand.product(lo, hi, vec, out[lo:hi])
            continue
        tile = np.ascontiguousarray(operand.rows(lo, hi))
        if part is not None:
            _core.ring64_matmul_tn(tile, vec[lo:hi], part)
            out += part
        else:
            _core.ring64_matmul_nn(tile, vec, out[lo:hi])
    return out


def _check_seed(seed: Any, owner: str) -> bytes:
    if not isinstance(seed, bytes | bytearray) or len(seed) != 16:
        raise MpcError(f"party {owner}: sent a malformed matrix seed")
    return bytes(seed)


def _put(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > CACHE:
        cache.popitem(last=False)


async def _finish(backend: SecureBackend, z: np.ndarray, v: SecretTensor, rows: int,
                  integer: bool) -> SecretTensor:
    """This party's local product z into a rep3 sharing: zero sharing, reshare, truncate."""
    suite = cast(Rep3, backend.suite)
    z += suite._zero(suite.ring, z.shape)
    out = await suite._reshare(z)
    if v.ndim == 1:
        out = (out[0].reshape(rows), out[1].reshape(rows))
    result = SecretTensor(backend, out, v.scale + (0 if integer else backend.f))
    if result.scale > backend.f:
        result = SecretTensor(backend, await suite.trunc(out, result.scale - backend.f),
                              backend.f)
    return result


# --- an input provider's matrix shared once, the products without the provider --------
Replicated = tuple[_Operand, _Operand]
"""A compute party's two components (x_i, x_{i+1}) of a provider's replicated matrix."""


async def provide_matrix(ctx: Context, compute: Sequence[str], x: Any, frac: int,
                         party: str) -> None:
    """The input provider's side: x = x_0 + x_1 + x_2 with x_0, x_1 from fresh seeds and
    x_2 streamed a message per group of tiles to the two parties holding it (party i
    holds (x_i, x_{i+1})). x is encoded tile by tile: any :class:`RowMatrix` works and
    no n x d array of words is ever held."""
    shape = (int(x.shape[0]), int(x.shape[1]))
    s0, s1 = fresh_key(), fresh_key()
    seeds = {compute[0]: [s0, s1], compute[1]: [s1], compute[2]: [s0]}
    for p in compute:
        await ctx.send(p, "seeds", seeds[p])
    await _stream_third_share(ctx, compute[1:], "x", _Encoded(x, frac, party), s0, s1, shape)


async def _stream_third_share(ctx: Context, holders: Sequence[str], tag: str, encoded: Any,
                              s0: bytes, s1: bytes, shape: tuple[int, int]) -> None:
    """Send x_2 = X - PRG(s0) - PRG(s1) to its two holders a group of tiles per message
    (``<tag>/d/<first row>``), so no n x d array of words is ever held."""
    a, b = _Seeded(s0, shape), _Seeded(s1, shape)
    tiles = _tiles(shape)
    for g in range(0, len(tiles), TILES_PER_MESSAGE):
        group = tiles[g:g + TILES_PER_MESSAGE]
        block = np.concatenate([encoded.rows(lo, hi) - a.rows(lo, hi) - b.rows(lo, hi)
                                for lo, hi in group])
        for p in holders:
            await ctx.send(p, f"{tag}/d/{group[0][0]}", block)
        del block


async def receive_matrix(ctx: Context, owner: str, index: int,
                         shape: tuple[int, int]) -> Replicated:
    """Compute party ``index``'s components of the provider's matrix (seeds expanded
    lazily, x_2 in memory or a temporary file: see :class:`_Stored`)."""
    seeds = await ctx.recv(owner, "seeds")
    if not isinstance(seeds, list) or len(seeds) != (2 if index == 0 else 1):
        raise MpcError(f"party {owner}: sent malformed matrix seeds")
    seeded = [_Seeded(_check_seed(sd, owner), shape) for sd in seeds]
    if index == 0:
        return seeded[0], seeded[1]
    stored = await _receive_difference(ctx, owner, "x", shape)
    return (seeded[0], stored) if index == 1 else (stored, seeded[0])


async def replicated_product(backend: SecureBackend, held: Replicated, rows: slice,
                             v: SecretTensor, transpose: bool) -> SecretTensor:
    """<X[rows] @ v> or <X[rows]^T @ v> for a provider's matrix X held as ``held``:
    x_i (v_i + v_{i+1}) + x_{i+1} v_i locally, then a reshare of the outputs."""
    suite = cast(Rep3, backend.suite)
    full = held[0].shape
    n = rows.stop - rows.start
    shape = (n, full[1])
    first, second = ((held[0], held[1]) if (rows.start, n) == (0, full[0]) else
                     (_Window(held[0], rows.start, shape), _Window(held[1], rows.start, shape)))
    inner = n if transpose else full[1]
    if v.shape[0] != inner:
        raise MpcError(f"party {suite.ctx.party}: the vector has {v.shape[0]} rows, the "
                       f"product by a {shape} matrix needs {inner}")
    suite.next_nonce()
    v0, v1 = (a.reshape(inner, -1) for a in v.share)
    z = _stream_product(first, v0 + v1, transpose)
    z += _stream_product(second, v0, transpose)
    return await _finish(backend, z, v, full[1] if transpose else n, False)
