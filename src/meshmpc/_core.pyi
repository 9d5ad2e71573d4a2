"""Type stub for meshmpc._core (the Cython bindings over csrc/).

Sections follow the include files of _core.pyx: kernels, ring, pir.
"""

import numpy as np
import numpy.typing as npt

# --- kernels (AES, PRG, hashes, transpose, GF(2^128)) ---

# --- ring (Z_2^64 / Z_2^128 arithmetic for secret sharing) ---

# --- pir (LWE matrix-vector products mod 2^32) ---
