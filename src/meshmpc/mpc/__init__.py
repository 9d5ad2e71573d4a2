"""meshmpc.mpc: the secure computation engine under linalg and ml.

Module map (dependency order):

* ``prg``: AES-CTR randomness addressed by (nonce, stream), keys from the OS.
* ``ring``: Z_2^64 (numpy) and Z_2^128 (C kernels) arithmetic on share arrays.
* ``fixedpoint``: fraction bits and truncation mode.
* ``suite``: the interface both protocol suites implement.
* ``circuits``: bit-sliced sign/carry circuits on XOR shares.
* ``triples`` (provider interface, the test-only dealer), ``ot_triples`` (OT-based).
* ``semi2k`` (2..N parties, dishonest majority), ``rep3`` (3 parties, honest majority).
* ``factory``: ``await make_suite(ctx, "semi2k" | "rep3", triples=..., ring_bits=...)``.
* ``nonlinear``: sigmoid, exp, log, reciprocal, sqrt, softmax, max... on any tensor backend.

Protocol specifications: protocols/semi2k.md, protocols/rep3.md, protocols/gc.md.
"""

from meshmpc.mpc.factory import make_provider, make_suite
from meshmpc.mpc.fixedpoint import FixedPoint
from meshmpc.mpc.suite import Suite

__all__ = ["FixedPoint", "Suite", "make_provider", "make_suite"]
