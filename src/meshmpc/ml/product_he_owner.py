"""The owner's side of the HE product: block products, on every core.

SEAL's Python calls hold the GIL, so the owner's row blocks are spread over
worker processes (forked, so they see the owner's matrix without copying it;
each rebuilds its SEAL objects from bytes). Every chunk of row blocks gets a
fresh mask seed from the parent (OS randomness), so no two workers reuse masks.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from meshmpc.ml.product_he_seal import PLAIN_MODULUS, POLY_DEGREE, X_BITS, BfvContext
from meshmpc.mpc.errors import MpcError
from meshmpc.mpc.prg import Prg, fresh_key

T_MASK = np.uint64(PLAIN_MODULUS - 1)
BLOCK_CHUNK = 16  # row blocks per chunk (one message per key holder)
PARALLEL_MIN_CHUNKS = 4  # below this the products run in the owner's process


@dataclass(frozen=True)
class Layout:
    """How an (rows x cols) matrix is cut into plaintext blocks of n_w x d_w."""

    rows: int
    cols: int
    d_w: int

    @property
    def n_w(self) -> int:
        return POLY_DEGREE // self.d_w

    @property
    def row_blocks(self) -> int:
        return -(-self.rows // self.n_w)

    @property
    def col_blocks(self) -> int:
        return -(-self.cols // self.d_w)

    @property
    def chunks(self) -> int:
        return -(-self.row_blocks // BLOCK_CHUNK)

    @property
    def positions(self) -> np.ndarray:
        """Coefficients holding the block's n_w outputs."""
        return np.arange(self.n_w, dtype=np.int64) * self.d_w + self.d_w - 1

    def span(self, block: int) -> tuple[int, int]:
        return block * self.n_w, min((block + 1) * self.n_w, self.rows)


class EncodedMatrix:
    """The owner's matrix M (= X, or X^T for rmatvec), encoded a block of rows at a time."""

    def __init__(self, x: Any, shape: tuple[int, int], transpose: bool, scale: int,
                 party: str) -> None:
        if tuple(x.shape) != tuple(shape):
            raise MpcError(f"party {party}: the matrix has shape {tuple(x.shape)}, "
                           f"the product was called with {tuple(shape)}")
        if transpose and not isinstance(x, np.ndarray):
            x = np.asarray(x[0:shape[0]])
        self.x, self.transpose, self.scale, self.party = x, transpose, scale, party

    def rows(self, lo: int, hi: int) -> np.ndarray:
        """Rows lo..hi of M as int64 at the product's scale."""
        part = np.asarray(self.x[:, lo:hi]).T if self.transpose else np.asarray(self.x[lo:hi])
        scaled = np.rint(part.astype(np.float64) * 2.0 ** self.scale)
        if scaled.size and float(np.max(np.abs(scaled))) >= 2.0 ** X_BITS:
            raise MpcError(f"party {self.party}: a matrix entry is too large for the HE product "
                           f"(|x| * 2^{self.scale} must stay below 2^{X_BITS}); rescale that "
                           f"feature")
        return scaled.astype(np.int64)

    def plaintext_blocks(self, lay: Layout, block: int) -> list[np.ndarray | None]:
        """Coefficient vectors of the row block's plaintexts (None for all-zero blocks)."""
        lo, hi = lay.span(block)
        rows = np.zeros((lay.n_w, lay.col_blocks * lay.d_w), dtype=np.int64)
        rows[: hi - lo, : lay.cols] = self.rows(lo, hi)
        out: list[np.ndarray | None] = []
        for b in range(lay.col_blocks):
            part = rows[:, b * lay.d_w:(b + 1) * lay.d_w][:, ::-1]
            out.append(part.reshape(-1).view(np.uint64) & T_MASK if part.any() else None)
        return out

    def local_product(self, share: np.ndarray, rows: int, cols: int) -> np.ndarray:
        """M @ (the owner's own share) mod 2^64, a block of rows at a time."""
        out = np.empty((rows, share.shape[1]), dtype=np.uint64)
        step = max(1, (1 << 22) // max(cols, 1))
        for lo in range(0, rows, step):
            hi = min(lo + step, rows)
            out[lo:hi] = np.matmul(self.rows(lo, hi).view(np.uint64), share, dtype=np.uint64)
        return out


class PlainCache:
    """The owner's NTT-form plaintext blocks kept across products of the same rows (a
    training loop's mini-batches come back every epoch), within a byte budget: blocks
    are kept first come, first kept; once the budget is spent the rest are recomputed.
    Only products run in the owner's process use it (workers' copies are discarded)."""

    def __init__(self, budget_mb: float | None = None) -> None:
        if budget_mb is None:
            budget_mb = float(os.environ.get("MESHMPC_HE_PLAIN_CACHE_MB", "1536"))
        self.free = int(budget_mb * 2**20)
        self.blocks: dict[tuple[Any, int], list[Any]] = {}
        self.hits = 0

    def get(self, key: Any, block: int) -> list[Any] | None:
        found = self.blocks.get((key, block))
        self.hits += found is not None
        return found

    def put(self, key: Any, block: int, plains: list[Any]) -> None:
        size = sum(POLY_DEGREE * 3 * 8 for p in plains if p is not None)
        if size <= self.free:
            self.blocks[(key, block)] = plains
            self.free -= size


@dataclass
class OwnerJob:
    """Everything a worker needs to compute chunks of one product."""

    matrix: EncodedMatrix
    lay: Layout
    bits: int
    vectors: int
    inputs: dict[str, list[bytes]]  # per key holder: vectors x col_blocks ciphertexts
    public_keys: dict[str, bytes]
    own: np.ndarray | None  # two parties: the owner's share, added under the holder's key
    cache: PlainCache | None = None  # NTT plaintexts kept across products (in-process only)
    cache_key: Any = None  # which rows and layout of the matrix this product uses


Chunk = tuple[dict[str, list[np.ndarray]], dict[str, np.ndarray]]
"""Per key holder: the compacted result ciphertexts and the owner's shares (vectors x rows)."""


class OwnerEngine:
    """SEAL state for one product: loaded inputs (NTT form) and the holders' encryptors."""

    def __init__(self, job: OwnerJob) -> None:
        self.job, self.bfv = job, BfvContext()
        self.encryptors = {h: self.bfv.public_encryptor(pk, h)
                           for h, pk in job.public_keys.items()}
        self.inputs = {h: self._load(h, raw) for h, raw in job.inputs.items()}

    def _load(self, holder: str, raw: list[bytes]) -> list[list[Any]]:
        lay, ev = self.job.lay, self.bfv.evaluator
        out = []
        for vec in range(self.job.vectors):
            row = []
            for b in range(lay.col_blocks):
                ct = self.bfv.load_cipher(raw[vec * lay.col_blocks + b], holder)
                if self.job.own is not None:
                    coeffs = vector_block(self.job.own[:, vec] & T_MASK, lay, b)
                    ev.add_plain_inplace(ct, self.bfv.plaintext(coeffs))
                ev.transform_to_ntt_inplace(ct)
                row.append(ct)
            out.append(row)
        return out

    def chunk(self, index: int, seed: bytes) -> Chunk:
        lay, prg = self.job.lay, Prg(seed)
        start, stop = index * BLOCK_CHUNK, min((index + 1) * BLOCK_CHUNK, lay.row_blocks)
        lo_row = lay.span(start)[0]
        words: dict[str, list[np.ndarray]] = {h: [] for h in self.inputs}
        masks = {h: np.zeros((self.job.vectors, lay.span(stop - 1)[1] - lo_row), np.uint64)
                 for h in self.inputs}
        nonce = 0
        for block in range(start, stop):
            plains = self._plains(block)
            lo, hi = lay.span(block)
            for holder, cts in self.inputs.items():
                for vec in range(self.job.vectors):
                    nonce += 1
                    out, r = self._block(holder, cts[vec], plains, prg, nonce)
                    words[holder].append(out)
                    masks[holder][vec, lo - lo_row:hi - lo_row] = r[: hi - lo]
        return words, masks

    def _plains(self, block: int) -> list[Any]:
        """The row block's NTT plaintexts (None for all-zero blocks), cached when allowed."""
        cache, key = self.job.cache, self.job.cache_key
        plains = None if cache is None else cache.get(key, block)
        if plains is None:
            plains = [None if c is None else self.bfv.ntt_plaintext(c)
                      for c in self.job.matrix.plaintext_blocks(self.job.lay, block)]
            if cache is not None:
                cache.put(key, block, plains)
        return plains

    def _block(self, holder: str, cts: list[Any], plains: list[Any], prg: Prg,
               nonce: int) -> tuple[np.ndarray, np.ndarray]:
        ev, lay = self.bfv.evaluator, self.job.lay
        acc = None
        for ct, plain in zip(cts, plains, strict=True):
            if plain is None:  # an all-zero block: SEAL refuses the (transparent) product
                continue
            term = ev.multiply_plain(ct, plain)
            if acc is None:
                acc = term
            else:
                ev.add_inplace(acc, term)
        encryptor = self.encryptors[holder]
        if acc is None:
            acc = encryptor.encrypt_zero()
        mask = prg.words(POLY_DEGREE, nonce, 0) & T_MASK
        # only the coefficients sent (compact) are flooded: c0's others never leave
        out = self.bfv.finish(acc, encryptor.encrypt_zero(), mask, self.job.bits, prg, nonce,
                              lay.positions)
        owner_share = (np.uint64(0) - mask[lay.positions]) & T_MASK
        return self.bfv.compact(out, lay.positions), owner_share


def vector_block(values: np.ndarray, lay: Layout, b: int) -> np.ndarray:
    out = np.zeros(lay.d_w, dtype=np.uint64)
    part = values[b * lay.d_w:(b + 1) * lay.d_w]
    out[: part.size] = part
    return out


_JOB: OwnerJob | None = None  # the job a forked worker inherits
_ENGINE: OwnerEngine | None = None


def _worker_chunk(index: int, seed: bytes) -> Chunk:
    global _ENGINE
    if _ENGINE is None:
        assert _JOB is not None
        _ENGINE = OwnerEngine(_JOB)
    return _ENGINE.chunk(index, seed)


def workers() -> int:
    """Worker processes for the owner's products (MESHMPC_HE_WORKERS, default: CPUs usable)."""
    env = os.environ.get("MESHMPC_HE_WORKERS")
    if env:
        return max(1, int(env))
    return max(1, len(os.sched_getaffinity(0)))


async def run_chunks(job: OwnerJob) -> AsyncIterator[tuple[int, Chunk]]:
    """Chunks of the product in order, computed on ``workers()`` processes when large."""
    count = workers()
    if count == 1 or job.lay.chunks < PARALLEL_MIN_CHUNKS:
        engine = OwnerEngine(job)
        for index in range(job.lay.chunks):
            yield index, engine.chunk(index, fresh_key())
            await asyncio.sleep(0)
        return
    global _JOB
    _JOB = job
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("fork")) as pool:
        pending = [loop.run_in_executor(pool, _worker_chunk, i, fresh_key())
                   for i in range(job.lay.chunks)]
        try:
            for index, future in enumerate(pending):
                yield index, await future
        finally:
            for future in pending:
                future.cancel()
            _JOB = None
