"""Build meshmpc._core: the C99 kernels in csrc/ bound through Cython.

Every csrc/*.c file is compiled into the one extension. The kernels pick their
SIMD path at run time from CPU features (function-level target attributes), so
the build uses no -march flag and the wheel runs on any x86-64 CPU.
"""

from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

ROOT = Path(__file__).parent
C_SOURCES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "csrc").glob("*.c"))
PYX = ROOT / "src" / "meshmpc" / "_core.pyx"

extensions = []
if PYX.exists():
    extensions.append(
        Extension(
            "meshmpc._core",
            sources=["src/meshmpc/_core.pyx", *C_SOURCES],
            include_dirs=["csrc/include", numpy.get_include()],
            extra_compile_args=["-O3", "-std=gnu99", "-fno-strict-aliasing", "-Wall"],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            # GMP for csrc/he.c, OpenSSL's libcrypto (BIGNUM) for csrc/he_mont.c
            # (meshmpc.crypto.he); `make` installs libgmp-dev and libssl-dev when missing.
            libraries=["gmp", "crypto"],
        )
    )

setup(
    # bench/ is installed as meshmpc_bench so that `meshmpc bench NAME` finds it.
    packages=[*find_packages("src"), "meshmpc_bench"],
    package_dir={"": "src", "meshmpc_bench": "bench"},
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    )
)
