"""meshmpc.crypto.he: additively homomorphic encryption over GMP.

Paillier with Damgård–Jurik–Nielsen short-exponent randomisers and
Okamoto–Uchiyama, both with windowed fixed-base tables, CRT decryption (and CRT
encryption for the secret-key holder), batch operations over numpy limb arrays
in threaded C (csrc/he.c), and fixed-point packing of several values per
plaintext (:mod:`meshmpc.crypto.he.packing`). See protocols/he.md.
"""

from meshmpc.crypto.he.base import Ciphertexts, PublicKeyBase, security_of
from meshmpc.crypto.he.errors import (
    HeError,
    PackingOverflowError,
    PlaintextRangeError,
    WrongKeyError,
)
from meshmpc.crypto.he.ou import OUPublicKey, OUSecretKey, generate_ou
from meshmpc.crypto.he.paillier import PaillierPublicKey, PaillierSecretKey, generate_paillier

SecretKey = PaillierSecretKey | OUSecretKey
PublicKey = PaillierPublicKey | OUPublicKey


def generate(scheme: str = "ou", bits: int = 2048, key_shape: str = "standard",
             **kwargs: object) -> SecretKey:
    """A fresh key pair of ``scheme`` ("paillier" or "ou"); ``key_shape`` "subgroup"
    (Paillier only, opt-in) is the fast-decryption shape of protocols/he.md."""
    if scheme == "paillier":
        return generate_paillier(bits, key_shape=key_shape, **kwargs)  # type: ignore[arg-type]
    if key_shape != "standard":
        raise ValueError(f"he: key shape {key_shape!r} exists for paillier only, not {scheme!r}")
    if scheme == "ou":
        return generate_ou(bits, **kwargs)  # type: ignore[arg-type]
    raise ValueError(f"he: unknown scheme {scheme!r} (paillier, ou)")


def public_key_from_dict(d: dict[str, object]) -> PublicKey:
    """A peer's public key from its wire form."""
    if d.get("scheme") == "paillier":
        return PaillierPublicKey.from_dict(d)
    return OUPublicKey.from_dict(d)


__all__ = [
    "Ciphertexts", "HeError", "OUPublicKey", "OUSecretKey", "PackingOverflowError",
    "PaillierPublicKey", "PaillierSecretKey", "PlaintextRangeError", "PublicKey",
    "PublicKeyBase", "SecretKey", "WrongKeyError", "generate", "generate_ou",
    "generate_paillier", "public_key_from_dict", "security_of",
]
