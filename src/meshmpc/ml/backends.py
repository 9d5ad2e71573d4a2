"""Choosing the owner product of a job step from its ``security`` parameter.

``security: dishonest-majority`` (default): semi2k among all the step's parties
with OT-made triples (``triples: dealer`` exists for tests and benchmarks only
and must be named). ``security: honest-majority``: rep3 among three compute
parties (``compute: [...]``, default the label holder and the first two other
parties); a fourth party is an input provider (no backend: its products
return None). The fast products (lattice HE, seed-compressed rep3) plug in
through ``make_product(backend, security=..., ctx=...)`` found in
``meshmpc.ml.product``, ``meshmpc.ml.product_he`` or ``meshmpc.ml.product_rep3``;
without one the reference :class:`~meshmpc.ml.product.SharedInputProduct`
is used, which is correct under the same suite but costs n x d traffic
(small data only) and cannot serve an input provider.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from meshmpc.linalg import SecureBackend
from meshmpc.ml.product import OwnerProduct, SharedInputProduct
from meshmpc.mpc.errors import MpcError
from meshmpc.mpc.factory import make_suite
from meshmpc.net import Context

SECURITY = ("dishonest-majority", "honest-majority")
FACTORY_MODULES = ("meshmpc.ml.product", "meshmpc.ml.product_he", "meshmpc.ml.product_rep3")


def security_of(params: Mapping[str, Any]) -> str:
    security = str(params.get("security", "dishonest-majority"))
    if security not in SECURITY:
        raise MpcError(f"security must be one of {SECURITY}, got {security!r}")
    return security


def fast_factory() -> Callable[..., OwnerProduct] | None:
    """The first ``make_product`` installed among :data:`FACTORY_MODULES`."""
    for name in FACTORY_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        factory = getattr(module, "make_product", None)
        if callable(factory):
            return factory
    return None


def compute_parties(parties: Sequence[str], label_holder: str | None,
                    compute: Sequence[str] | None) -> list[str]:
    """The three rep3 parties: ``compute`` if given, else the label holder first and the
    first two others (in job order)."""
    if compute:
        chosen = [str(p) for p in compute]
    else:
        first = [label_holder] if label_holder is not None and label_holder in parties else []
        chosen = first + [p for p in parties if p not in first][: 3 - len(first)]
    if len(set(chosen)) != 3 or not set(chosen) <= set(parties):
        raise MpcError(f"honest-majority computes among three distinct parties of the job; "
                       f"got {chosen}")
    return chosen


def _call(factory: Callable[..., OwnerProduct], backend: SecureBackend | None,
          security: str, ctx: Context) -> OwnerProduct:
    if "ctx" in inspect.signature(factory).parameters:
        product = factory(backend, security=security, ctx=ctx)
    else:
        product = factory(backend, security=security)
    if not isinstance(product, OwnerProduct):
        raise MpcError(f"make_product returned {type(product).__name__}, not an OwnerProduct")
    return product


async def owner_product(ctx: Context, params: Mapping[str, Any],
                        label_holder: str | None = None) -> OwnerProduct:
    """The owner product for ``params.security`` over ``ctx``'s parties.

    Under honest majority a party outside the three compute parties gets a product
    whose ``backend`` is None (an input provider).
    """
    security = security_of(params)
    factory = fast_factory()
    backend: SecureBackend | None
    if security == "honest-majority":
        compute = compute_parties(ctx.parties, label_holder, params.get("compute"))
        backend = None
        if ctx.party in compute:
            sub = ctx.subgroup(compute).scope("rep3")
            backend = SecureBackend(await make_suite(sub, "rep3", triples="none"))
        if len(ctx.parties) > 3 and factory is None:
            raise MpcError("honest-majority with more than three parties needs the rep3 owner "
                           "product (make_product in meshmpc.ml.product_rep3), not installed")
    else:
        suite = await make_suite(ctx, "semi2k", triples=str(params.get("triples", "ot")))
        backend = SecureBackend(suite)
    if factory is None:
        assert backend is not None
        return SharedInputProduct(backend)
    return _call(factory, backend, security, ctx)
