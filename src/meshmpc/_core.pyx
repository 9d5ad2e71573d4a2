# cython: language_level=3
"""meshmpc._core: thin Cython bindings over the C99 kernels in csrc/.

One binding per C entry point, argument checks only, no policy. Each kernel
family keeps its bindings in its own include file so that families can grow
independently; the stub for editors and mypy is _core.pyi.
"""

include "_core_kernels.pxi"
include "_core_ring.pxi"
include "_core_pir.pxi"
include "_core_psi.pxi"
include "_core_wire.pxi"
include "_core_oprf.pxi"
include "_core_pir_oprf.pxi"
include "_core_he.pxi"
include "_core_vole.pxi"
include "_core_mill.pxi"
include "_core_gilboa.pxi"
include "_core_bfv.pxi"
include "_core_ecdh.pxi"
