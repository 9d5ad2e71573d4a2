"""meshmpc.net: the encrypted full mesh every protocol talks over.

Public API: :class:`Context` (passed to protocol code), :class:`MemoryMesh` and
:func:`run_parties` (all parties in one process), the TCP mesh and
:func:`meshmpc.net.launch.run_local` (one process per party on loopback).
"""

from meshmpc.net.context import Context
from meshmpc.net.eventloop import run
from meshmpc.net.memory import MemoryMesh, gather_parties, run_parties
from meshmpc.net.mesh import Mesh
from meshmpc.net.stats import LinkStats

__all__ = ["Context", "LinkStats", "MemoryMesh", "Mesh", "gather_parties", "run", "run_parties"]
