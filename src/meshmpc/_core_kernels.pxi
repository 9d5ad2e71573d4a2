# Bindings for the kernels kernel family (csrc/kernels*.c); see _core.pyx.
