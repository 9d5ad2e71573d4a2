"""Errors raised by the secure computation engine (suites, tensors, triples)."""

from meshmpc.errors import MeshMPCError


class MpcError(MeshMPCError, ValueError):
    """A secure computation was asked something it cannot do (bad shape, suite, party)."""


class UnsupportedOperationError(MeshMPCError, NotImplementedError):
    """The chosen suite, ring or triple provider does not implement this operation.

    The message names the suite and says which configuration does support it.
    """
