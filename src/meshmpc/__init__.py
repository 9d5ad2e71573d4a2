"""meshmpc: privacy-preserving computation for SME credit risk control.

The layers, bottom up: ``_core`` (C kernels), ``net`` (the encrypted mesh),
``crypto``, ``ot``, and the protocol layers built on them. See README.md for
the module map.
"""

__version__ = "0.1.0"
