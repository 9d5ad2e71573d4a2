"""Symmetric crypto kernels for every protocol layer (C core via meshmpc._core).

* :class:`~meshmpc.crypto.prg.Prg` - AES-128-CTR PRG seeded from ``os.urandom``;
  fills numpy buffers (blocks, uint64, bits) in one C call.
* :class:`~meshmpc.crypto.aes.Aes128` - batch AES-128 under any key;
  :data:`~meshmpc.crypto.aes.FIXED_KEY_AES` is the public fixed-key permutation.
* :mod:`~meshmpc.crypto.hashing` - :func:`ccr_hash` / :func:`tccr_hash`
  (fixed-key AES correlation-robust hashes for OT and garbling) and
  :func:`item_hash` (byte keys to 128 bits, BLAKE2b via libsodium).
* :mod:`~meshmpc.crypto.bits` - bit-matrix transpose, GF(2^128) products,
  row select / conditional XOR.

Each kernel picks AES-NI, VAES/AVX-512 or a portable C path at run time; the
``path`` argument forces one (tests use it to check that all paths agree).
"""

from meshmpc.crypto.aes import FIXED_KEY_AES, Aes128, available_paths
from meshmpc.crypto.bits import gf128_inner, gf128_mul, select_rows, transpose, xor_where
from meshmpc.crypto.hashing import ccr_hash, item_hash, tccr_hash
from meshmpc.crypto.prg import Prg

__all__ = [
    "FIXED_KEY_AES",
    "Aes128",
    "Prg",
    "available_paths",
    "ccr_hash",
    "gf128_inner",
    "gf128_mul",
    "item_hash",
    "select_rows",
    "tccr_hash",
    "transpose",
    "xor_where",
]
