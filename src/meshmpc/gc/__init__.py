"""meshmpc.gc: half-gates garbled circuits (free-XOR, fixed-key AES in C).

:mod:`meshmpc.gc.halfgates` garbles/evaluates the sign-bit circuit of two
64-bit words over many instances at once; :mod:`meshmpc.gc.compare` runs it as
a two-party protocol (:class:`GcSign`) on IKNP correlated OT, used by semi2k's
``comparison="gc"`` option.
"""

from meshmpc.gc.compare import GcSign
from meshmpc.gc.halfgates import SignEvaluator, SignGarbler

__all__ = ["GcSign", "SignEvaluator", "SignGarbler"]
