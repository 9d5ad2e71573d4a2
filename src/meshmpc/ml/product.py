"""The owner-matrix x shared-vector product: the primitive of vertical learning.

A matrix X (n rows x d columns) is held in plaintext by one party, its *owner*;
a vector or thin matrix ``v`` is secret-shared among the compute parties. Nearly
every vertical-learning step is one of three products, each returning a
secret-shared result and revealing nothing to anyone:

- ``matvec``:      X @ <v>     (v: d or d x k) -> <n or n x k>   (scoring, forward pass)
- ``rmatvec``:     X^T @ <v>   (v: n or n x k) -> <d or d x k>   (gradients)
- ``grouped_sum``: per-group sums of <v> (v: n or n x k) for each of the owner's
  integer group columns (bin indices), -> <sum(groups) x k>       (WOE counts, histograms)

Implementations (chosen per job by ``security``) live beside this module and
subclass :class:`OwnerProduct`:

- :class:`SharedInputProduct` (here): the owner secret-shares X and the suite
  multiplies. Correct under any suite, but costs n*d traffic and triples: the
  reference the fast ones are tested against and the fallback for small data.
- dishonest majority: lattice-HE products (Cheetah-style coefficient encoding),
  cost ~ owner's n*d local arithmetic, traffic ~ n + d.
- honest majority: rep3 with X shared once (seed-compressed), local products.

Every party of the product calls the same method in the same order (SPMD); the
owner passes ``x``, the others ``None`` and the public ``shape``. Plaintext X is
float (encoded at the backend's fixed-point scale, result truncated back to
``v``'s scale) unless ``integer=True`` (exact integer X such as one-hot bins:
no truncation, result at ``v``'s scale).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from meshmpc.linalg import SecretTensor, SecureBackend
from meshmpc.mpc.errors import MpcError
from meshmpc.net import Context


@runtime_checkable
class RowMatrix(Protocol):
    """A matrix too large to hold: ``shape`` and row slices ``m[lo:hi]`` (an ndarray,
    an ``np.memmap`` or a generator of row blocks). The fast products stream it."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __getitem__(self, key: Any) -> Any: ...


MatrixLike = np.ndarray | RowMatrix
"""The owner's matrix: an ndarray, or (matvec only) any :class:`RowMatrix`."""


class OwnerProduct(ABC):
    """Products of an owner's plaintext matrix with secret-shared vectors."""

    def __init__(self, backend: SecureBackend) -> None:
        self.backend = backend

    @property
    def party(self) -> str:
        return self.backend.suite.ctx.party

    @abstractmethod
    async def matvec(self, owner: str, x: MatrixLike | None, v: SecretTensor,
                     shape: tuple[int, int], integer: bool = False) -> SecretTensor:
        """<X @ v>; X has ``shape`` (n, d) and is passed by its owner only."""

    @abstractmethod
    async def rmatvec(self, owner: str, x: MatrixLike | None, v: SecretTensor,
                      shape: tuple[int, int], integer: bool = False) -> SecretTensor:
        """<X^T @ v>; X has ``shape`` (n, d) and is passed by its owner only."""

    async def grouped_sum(self, owner: str, groups: np.ndarray | None, v: SecretTensor,
                          n_groups: Sequence[int]) -> SecretTensor:
        """Per-group sums of <v>, feature by feature, concatenated.

        ``groups`` (owner only) is an int array n x f of group indices, column j
        in [0, n_groups[j]); the result has sum(n_groups) rows (feature 0's groups
        first). The default builds the one-hot matrix and uses ``rmatvec``;
        implementations may do better.
        """
        n = v.shape[0]
        total = int(sum(n_groups))
        onehot = None
        if self.party == owner:
            if groups is None:
                raise MpcError(f"party {owner}: grouped_sum needs the group indices")
            onehot = one_hot(groups, n_groups)
        return await self.rmatvec(owner, onehot, v, (n, total), integer=True)


def one_hot(groups: np.ndarray, n_groups: Sequence[int]) -> np.ndarray:
    """The n x sum(n_groups) 0/1 matrix of an n x f array of group indices."""
    groups = np.asarray(groups)
    if groups.ndim == 1:
        groups = groups.reshape(-1, 1)
    n, f = groups.shape
    if f != len(n_groups):
        raise MpcError(f"{f} group columns but {len(n_groups)} group counts")
    offsets = np.concatenate([[0], np.cumsum(n_groups)[:-1]]).astype(np.int64)
    if np.any(groups < 0) or np.any(groups >= np.asarray(n_groups)):
        raise MpcError("a group index is outside [0, n_groups) of its column")
    out = np.zeros((n, int(sum(n_groups))), dtype=np.float64)
    out[np.repeat(np.arange(n), f), (groups + offsets).ravel()] = 1.0
    return out


class SharedInputProduct(OwnerProduct):
    """Reference implementation: the owner secret-shares X, the suite multiplies.

    Security is the suite's; traffic is of order n*d (plus the suite's
    multiplication cost), so use it for small data and as the test reference.
    """

    async def _share(self, owner: str, x: MatrixLike | None, shape: tuple[int, int],
                     integer: bool) -> SecretTensor:
        return await self.backend.input(owner, x, shape=shape, integer=integer)

    async def matvec(self, owner: str, x: MatrixLike | None, v: SecretTensor,
                     shape: tuple[int, int], integer: bool = False) -> SecretTensor:
        sx = await self._share(owner, x, shape, integer)
        return await sx.matmul(v)

    async def rmatvec(self, owner: str, x: MatrixLike | None, v: SecretTensor,
                      shape: tuple[int, int], integer: bool = False) -> SecretTensor:
        sx = await self._share(owner, x, shape, integer)
        return await sx.transpose().matmul(v)


SECURITY_MODES = ("dishonest-majority", "honest-majority", "reference")
"""``dishonest-majority``: lattice HE (meshmpc.ml.product_he), any number of parties;
``honest-majority``: rep3 among three compute parties (meshmpc.ml.product_rep3);
``reference``: :class:`SharedInputProduct` over the backend's suite."""


def make_product(backend: SecureBackend | None, security: str = "dishonest-majority",
                 ctx: Context | None = None) -> OwnerProduct:
    """The owner-matrix product for a job's ``security`` setting.

    ``dishonest-majority`` needs a semi2k backend (2 or more parties),
    ``honest-majority`` a rep3 backend; ``reference`` works over either. With
    honest majority in a four-party job, pass the job's ``ctx`` everywhere and
    ``backend=None`` at the fourth party (an input provider: its products return None).
    """
    if security not in SECURITY_MODES:
        raise MpcError(f"security must be one of {SECURITY_MODES}, got {security!r}")
    if security == "honest-majority":
        from meshmpc.ml.product_rep3 import Rep3Product

        return Rep3Product(backend, ctx)
    if backend is None:
        raise MpcError(f"security={security!r} needs a backend on every party")
    if security == "dishonest-majority":
        from meshmpc.ml.product_he import HeProduct

        return HeProduct(backend)
    return SharedInputProduct(backend)
