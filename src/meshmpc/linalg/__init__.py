"""meshmpc.linalg: SecretTensor, a numpy-like secret-shared array, and its plaintext twin.

Import map: :class:`SecureBackend` / :class:`SecretTensor` (secure, any suite),
:class:`PlainBackend` / :class:`PlainTensor` (float64 reference with the same
API), :func:`concatenate` and :func:`select`.
"""

from meshmpc.linalg.base import TensorBase, concatenate, select
from meshmpc.linalg.plain import PlainBackend, PlainTensor
from meshmpc.linalg.tensor import SecretTensor, SecureBackend

__all__ = ["PlainBackend", "PlainTensor", "SecretTensor", "SecureBackend", "TensorBase",
           "concatenate", "select"]
