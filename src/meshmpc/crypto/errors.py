"""Errors raised by the crypto kernels' Python layer."""

from meshmpc.errors import MeshMPCError


class KernelInputError(MeshMPCError, ValueError):
    """A buffer handed to a C kernel has the wrong shape, dtype or size.

    The message names the argument and what was expected, so the caller can
    fix the array it passed.
    """
