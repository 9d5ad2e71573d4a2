"""Choosing the owner product of a job step from its ``security`` parameter.

``security: dishonest-majority`` (default): semi2k among all the step's parties
with OT-made triples (``triples: dealer`` exists for tests and benchmarks only
and must be named); ``security: honest-majority``: rep3 among three parties.
The fast products (lattice HE, seed-compressed rep3) plug in through
``make_product(backend, security=...)`` in ``meshmpc.ml.product_he`` /
``meshmpc.ml.product_rep3`` when those modules are installed; otherwise the
reference :class:`~meshmpc.ml.product.SharedInputProduct` is used, which is
correct under the same suite but costs n x d traffic (small data only).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from meshmpc.linalg import SecureBackend
from meshmpc.ml.product import OwnerProduct, SharedInputProduct
from meshmpc.mpc.errors import MpcError
from meshmpc.mpc.factory import make_suite
from meshmpc.net import Context

SECURITY = ("dishonest-majority", "honest-majority")
_FAST = {"dishonest-majority": "meshmpc.ml.product_he",
         "honest-majority": "meshmpc.ml.product_rep3"}


def security_of(params: Mapping[str, Any]) -> str:
    security = str(params.get("security", "dishonest-majority"))
    if security not in SECURITY:
        raise MpcError(f"security must be one of {SECURITY}, got {security!r}")
    return security


async def owner_product(ctx: Context, params: Mapping[str, Any]) -> OwnerProduct:
    """The owner product for ``params.security`` over ``ctx``'s parties."""
    security = security_of(params)
    if security == "honest-majority":
        suite = await make_suite(ctx, "rep3", triples="none")
    else:
        suite = await make_suite(ctx, "semi2k", triples=str(params.get("triples", "ot")))
    backend = SecureBackend(suite)
    try:
        module = importlib.import_module(_FAST[security])
    except ImportError:
        return SharedInputProduct(backend)
    factory = getattr(module, "make_product", None)
    if factory is None:
        return SharedInputProduct(backend)
    product = factory(backend, security=security)
    if not isinstance(product, OwnerProduct):
        raise MpcError(f"{_FAST[security]}.make_product returned {type(product).__name__}, "
                       f"not an OwnerProduct")
    return product
