"""Placeholder: the fast implementation is in progress; the reference stands in."""

from __future__ import annotations

from meshmpc.ml.product import SharedInputProduct


class Rep3Product(SharedInputProduct):
    """Temporarily the reference product (same results, n*d traffic)."""
