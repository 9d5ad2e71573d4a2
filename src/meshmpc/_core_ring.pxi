# Bindings for the ring kernel family (csrc/ring*.c); see _core.pyx.
