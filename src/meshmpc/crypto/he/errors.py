"""Errors of the homomorphic encryption layer."""

from __future__ import annotations

from meshmpc.errors import MeshMPCError


class HeError(MeshMPCError):
    """Base class of homomorphic-encryption errors."""


class WrongKeyError(HeError, ValueError):
    """Ciphertexts used with a key (or with ciphertexts) of another key pair."""


class PlaintextRangeError(HeError, ValueError):
    """A plaintext does not fit the scheme's plaintext space."""


class PackingOverflowError(HeError, OverflowError):
    """Packed fixed-point sums could overflow their slot: fewer terms or wider slots needed."""
