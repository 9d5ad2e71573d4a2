"""The lattice-HE layer of the dishonest-majority product: BFV through Microsoft SEAL.

Everything cryptographic (key generation, encryption, NTT products, modulus
switching, decryption) is SEAL's (``seal-python``, SEAL 4.x). This module only
sets the parameters, moves coefficient arrays in and out of SEAL's
uncompressed serialisation (so plaintexts are built from numpy without a
Python call per coefficient), adds the flooding noise to c0 and compacts the
returned ciphertexts to the coefficients the key holder needs.

Parameters (fixed, public): N = 8192, data primes 3 x 60 bits plus a 38-bit
special prime (218 bits in all, SEAL's ``MaxBitCount(8192)`` for 128-bit
security under the HE standard's table), plaintext modulus t = 2^59 (SEAL
allows at most 60 bits; 2^59 divides 2^64, so a share sum mod 2^64 is also one
mod t). Products run at the top data level (q ~ 2^180), are flooded there and
switched down to two primes (~2^120) before they are sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import seal

from meshmpc.mpc.errors import MpcError
from meshmpc.mpc.prg import Prg

POLY_DEGREE = 8192
DATA_PRIME_BITS = (60, 60, 60)
SPECIAL_PRIME_BITS = 38
PLAIN_BITS = 59
PLAIN_MODULUS = 1 << PLAIN_BITS
STAT_BITS = 40
"""Statistical security of the noise flooding (bits)."""
X_BITS = 28
"""Public bound on the owner's encoded entries: |round(x * 2^f)| < 2^X_BITS."""

_SEAL_MAGIC = 17248067934  # the first word of SEAL's serialisation header (magic, version)
_PLAIN_HEAD = 11  # words before a plaintext's coefficients
_CIPHER_HEAD = 113  # bytes before a ciphertext's coefficients


@dataclass
class HeKeys:
    """A key holder's SEAL objects (the secret key never leaves this process)."""

    encryptor: seal.Encryptor
    decryptor: seal.Decryptor


class BfvContext:
    """The shared BFV parameters and the numpy <-> SEAL conversions."""

    def __init__(self) -> None:
        parms = seal.EncryptionParameters(seal.scheme_type.bfv)
        parms.set_poly_modulus_degree(POLY_DEGREE)
        parms.set_coeff_modulus(seal.CoeffModulus.Create(
            POLY_DEGREE, [*DATA_PRIME_BITS, SPECIAL_PRIME_BITS]))
        parms.set_plain_modulus(PLAIN_MODULUS)
        self.context = seal.SEALContext(parms, True, seal.sec_level_type.tc128)
        if not self.context.parameters_set():
            raise MpcError(f"SEAL rejected the BFV parameters: "
                           f"{self.context.parameter_error_message()}")
        self.evaluator = seal.Evaluator(self.context)
        top = self.context.first_context_data()
        self.top_parms = top.parms_id()
        self.top_primes = np.array([m.value() for m in top.parms().coeff_modulus()],
                                   dtype=np.uint64)
        low = top.next_context_data()
        self.low_parms = low.parms_id()
        self.low_primes = np.array([m.value() for m in low.parms().coeff_modulus()],
                                   dtype=np.uint64)
        self._low_template: bytes | None = None
        self._plain_buffers: dict[int, np.ndarray] = {}

    # --- keys ---------------------------------------------------------------------------
    def keygen(self) -> tuple[HeKeys, bytes]:
        """A fresh key pair: this party's keys and its serialised public key."""
        keygen = seal.KeyGenerator(self.context)
        secret = keygen.secret_key()
        public = keygen.create_public_key()
        keys = HeKeys(seal.Encryptor(self.context, public, secret),
                      seal.Decryptor(self.context, secret))
        return keys, public.to_string()

    def public_encryptor(self, public_key: bytes, peer: str) -> seal.Encryptor:
        """An encryptor under a peer's public key (validated by SEAL on load)."""
        try:
            key = self.context.from_public_str(bytes(public_key))
        except Exception as exc:  # SEAL raises ValueError/RuntimeError on bad data
            raise MpcError(f"party {peer}: its HE public key does not load ({exc}); "
                           f"both parties must run the same meshmpc version") from exc
        return seal.Encryptor(self.context, key)

    # --- plaintexts -----------------------------------------------------------------------
    def plaintext(self, coeffs: np.ndarray) -> seal.Plaintext:
        """A plaintext whose coefficients are ``coeffs`` (uint64, already mod t)."""
        n = coeffs.size
        buf = self._plain_buffers.get(n)
        if buf is None:  # SEAL's uncompressed layout: header, parms_id, count, scale, array
            buf = np.empty(_PLAIN_HEAD + n, dtype=np.uint64)
            buf[:_PLAIN_HEAD] = (_SEAL_MAGIC, 8 * (_PLAIN_HEAD + n), 0, 0, 0, 0, n,
                                 np.float64(1.0).view(np.uint64), _SEAL_MAGIC, 8 * (3 + n), n)
            self._plain_buffers[n] = buf
        buf[_PLAIN_HEAD:] = coeffs
        plain = seal.Plaintext()
        plain.load_bytes(self.context, buf.tobytes())
        return plain

    def ntt_plaintext(self, coeffs: np.ndarray) -> seal.Plaintext:
        plain = self.plaintext(coeffs)
        self.evaluator.transform_to_ntt_inplace(plain, self.top_parms)
        return plain

    # --- ciphertexts ------------------------------------------------------------------------
    def encrypt_coeffs(self, keys: HeKeys, coeffs: np.ndarray) -> bytes:
        """Symmetric encryption of a coefficient vector (mod t), serialised."""
        ct = keys.encryptor.encrypt_symmetric(self.plaintext(coeffs))
        return bytes(ct.to_string(seal.compr_mode_type.none))

    def load_cipher(self, data: bytes, peer: str) -> seal.Ciphertext:
        try:
            ct = self.context.from_cipher_str(bytes(data))
        except Exception as exc:
            raise MpcError(f"party {peer}: a ciphertext it sent does not load ({exc})") from exc
        if ct.size() != 2 or ct.parms_id() != self.top_parms:
            raise MpcError(f"party {peer}: a ciphertext it sent is not a fresh top-level one")
        return ct

    def finish(self, acc: seal.Ciphertext, zero: seal.Ciphertext, mask: np.ndarray,
               flood_bits: int, prg: Prg, nonce: int,
               positions: np.ndarray | None = None) -> seal.Ciphertext:
        """Re-randomise, mask, flood and switch down a product ciphertext.

        ``zero`` is a fresh public-key encryption of 0 (hides c1), ``mask`` the
        plaintext r added to every coefficient (hides the values), and c0 gets
        uniform noise in [-2^flood_bits, 2^flood_bits) (hides the owner's
        matrix in the noise) before the switch to two primes. With ``positions``
        only those coefficients of c0 are flooded: the caller sends no others
        (:meth:`compact`), and modulus switching acts coefficient by coefficient.
        """
        ev = self.evaluator
        if acc.is_ntt_form():
            ev.transform_from_ntt_inplace(acc)
        ev.add_inplace(acc, zero)
        ev.add_plain_inplace(acc, self.plaintext(mask))
        raw = np.frombuffer(bytearray(acc.to_string(seal.compr_mode_type.none)), np.uint8)
        n, primes = POLY_DEGREE, self.top_primes
        c0 = raw[_CIPHER_HEAD:_CIPHER_HEAD + 8 * n * primes.size].view(np.uint64).reshape(
            primes.size, n)
        if positions is None:
            c0[...] = _add_mod(c0, _centred_noise(prg, nonce, n, flood_bits, primes), primes)
        else:
            noise = _centred_noise(prg, nonce, positions.size, flood_bits, primes)
            c0[:, positions] = _add_mod(c0[:, positions], noise, primes)
        flooded = self.context.from_cipher_str(raw.tobytes())
        ev.mod_switch_to_next_inplace(flooded)
        return flooded

    def compact(self, ct: seal.Ciphertext, positions: np.ndarray) -> np.ndarray:
        """The words the key holder needs: c0 at ``positions`` and all of c1 (two primes)."""
        raw = np.frombuffer(ct.to_string(seal.compr_mode_type.none), np.uint8)
        n, k = POLY_DEGREE, self.low_primes.size
        data = raw[_CIPHER_HEAD:_CIPHER_HEAD + 16 * n * k].view(np.uint64).reshape(2, k, n)
        return np.concatenate([data[0][:, positions].reshape(-1), data[1].reshape(-1)])

    def decrypt_compact(self, keys: HeKeys, words: np.ndarray,
                        positions: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`compact` then decryption: the coefficients at ``positions``."""
        n, k = POLY_DEGREE, self.low_primes.size
        raw = np.frombuffer(bytearray(self._low_cipher_template()), np.uint8)
        data = raw[_CIPHER_HEAD:_CIPHER_HEAD + 16 * n * k].view(np.uint64).reshape(2, k, n)
        m = positions.size
        data[0][...] = 0
        data[0][:, positions] = words[:k * m].reshape(k, m) % self.low_primes[:, None]
        data[1][...] = words[k * m:].reshape(k, n) % self.low_primes[:, None]
        plain = keys.decryptor.decrypt(self.context.from_cipher_str(raw.tobytes()))
        return self.coefficients(plain)[positions]

    def coefficients(self, plain: seal.Plaintext) -> np.ndarray:
        """A plaintext's N coefficients as uint64 (zeros beyond its coefficient count)."""
        raw = np.frombuffer(plain.to_bytes(seal.compr_mode_type.none), np.uint64)
        out = np.zeros(POLY_DEGREE, dtype=np.uint64)
        coeffs = raw[_PLAIN_HEAD:]
        out[:coeffs.size] = coeffs
        return out

    def _low_cipher_template(self) -> bytes:
        if self._low_template is None:
            keygen = seal.KeyGenerator(self.context)
            enc = seal.Encryptor(self.context, keygen.create_public_key())
            ct = enc.encrypt_zero(self.low_parms)
            self._low_template = bytes(ct.to_string(seal.compr_mode_type.none))
        return self._low_template


def flood_bits(col_blocks: int, out_coeffs: int) -> int:
    """Flooding width: 2^STAT_BITS times the product noise, union-bounded over outputs.

    The noise of sum_b ct_b * pt_b is at most (6 sigma + 1) * N * 2^X_BITS * col_blocks
    (fresh symmetric noise, clipped at 6 sigma with sigma = 3.2, plus the rounding of
    the holder's encoding and of the owner's added share, times the plaintexts' l1
    norm); ``out_coeffs`` coefficients are flooded in all.
    """
    noise = math.log2((6 * 3.2 + 1.0) * POLY_DEGREE) + X_BITS + math.log2(max(col_blocks, 1))
    bits = math.ceil(noise + STAT_BITS + math.log2(max(out_coeffs, 2)))
    room = sum(DATA_PRIME_BITS) - PLAIN_BITS - 3
    if bits > room:
        raise MpcError(f"HE product too large to flood: needs 2^{bits} noise, the "
                       f"parameters leave 2^{room}; split the product into fewer columns")
    return bits


def _centred_noise(prg: Prg, nonce: int, n: int, bits: int, primes: np.ndarray) -> np.ndarray:
    """Uniform integers in [-2^bits, 2^bits) reduced mod each prime (primes x n)."""
    nibbles = (bits + 1 + 3) // 4
    words = prg.words(n * ((nibbles + 15) // 16), nonce, 1).view(np.uint8)
    digits = np.empty((nibbles, n), dtype=np.uint64)
    raw = words[: (nibbles * n + 1) // 2 * 1]
    nib = np.concatenate([raw & 15, raw >> 4])[: nibbles * n].astype(np.uint64)
    digits[...] = nib.reshape(nibbles, n)
    top_bits = bits + 1 - 4 * (nibbles - 1)
    digits[0] &= np.uint64((1 << top_bits) - 1)
    out = np.zeros((primes.size, n), dtype=np.uint64)
    p = primes[:, None]
    for digit in digits:  # Horner in base 16: acc * 16 + digit stays below 2^64
        out = (out * np.uint64(16) + digit) % p
    offset = np.array([pow(2, bits, int(q)) for q in primes], dtype=np.uint64)[:, None]
    return (out + p - offset) % p


def _add_mod(a: np.ndarray, b: np.ndarray, primes: np.ndarray) -> np.ndarray:
    p = primes[:, None]
    return (a % p + b % p) % p
