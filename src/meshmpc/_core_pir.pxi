# Bindings for the pir kernel family (csrc/pir*.c); see _core.pyx.
