"""The keyword layer: OPRF-keyed records in a bucketed, cuckoo-hashed byte matrix.

Every record key x is mapped by the server's OPRF to F(x); BLAKE2b(F(x), key =
the version's salt) gives the record's bucket, its two candidate columns in
that bucket, an 8-byte tag and a 16-byte AES key. The slot stored is
``tag || nonce || AES-128-CTR_key,nonce(len || record || padding)``, so the whole matrix can
be public: without F(x) a slot is indistinguishable from the random bytes that
fill empty slots. A client that obtained F(x) obliviously reads both candidate
columns of x's bucket with SimplePIR and looks for the tag.

Layout: the database D (uint8, one byte per Z_256 digit) has ``buckets``
row blocks of ``slots * slot_bytes`` rows and ``columns`` columns; slot j of
column c in bucket b holds its bytes down column c, at rows
``b * rows_per_bucket + j * slot_bytes ...``. Buckets are the batch code: a
batch of k keys costs about 2 * t(k) passes of each bucket's rows instead of
2 * k passes of the whole matrix (see :func:`bucket_capacity`).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from meshmpc import _core
from meshmpc.crypto import oprf
from meshmpc.crypto.prg import Prg
from meshmpc.crypto.sodium import addresses
from meshmpc.pir import lwe, oprf25519
from meshmpc.pir.errors import PirInputError, PirProtocolError
from meshmpc.pir.oprf25519 import PirOprfKey
from meshmpc.pir.prfcache import PrfCache, key_digests, prf_outputs, record_digests
from meshmpc.pir.sealing import LEN_BYTES, NONCE_BYTES, seal, seal_all, unseal  # noqa: F401

TAG_BYTES = 8
MAX_RECORD_BYTES = 65535
MATERIAL_BYTES = 36  # bucket u32, column u32 x 2, tag 8, AES key 16
MAX_COLUMNS = 400_000  # decoding error <= 2^-40 per entry needs columns below ~465k
LOAD_FACTOR = 0.9  # cuckoo fill target (2 choices, >= 4 slots per bin: threshold ~0.97)
HINT_CAP_BYTES = 64 << 20  # square buckets while the hint stays below this (choose_slots)
BATCH_FAILURE_LOG2 = -40  # a batch overflows a bucket with probability <= 2^-40
_PERSONAL = b"meshmpc-pir-v2".ljust(16, b"\0")
FORMAT = f"pir-3:{oprf25519.FORMAT}:aes128ctr-meshmpc"
"""The table format (OPRF, material hash, sealing). A client that meets another
format refuses the hint with a clear message instead of misreading slots; a
rebuild refuses a previous version of another format (pir-2: ristretto255)."""


@dataclass(frozen=True)
class PirParams:
    """Everything public about one database version (sent with the hint)."""

    version: str
    n_records: int
    record_bytes: int  # declared maximum; 0 = membership mode
    buckets: int
    slots: int
    columns: int
    seed: bytes
    salt: bytes
    lwe_n: int = lwe.LWE_N
    log_p: int = lwe.LOG_P
    format: str = FORMAT

    @property
    def slot_bytes(self) -> int:
        return TAG_BYTES + (NONCE_BYTES + LEN_BYTES + self.record_bytes
                            if self.record_bytes else 0)

    @property
    def rows_per_bucket(self) -> int:
        return self.slots * self.slot_bytes

    @property
    def rows(self) -> int:
        return self.buckets * self.rows_per_bucket

    def to_wire(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_wire(cls, obj: Any, peer: str) -> PirParams:
        """Check a peer's parameters field by field before trusting them."""
        if not isinstance(obj, dict):
            raise PirProtocolError(f"party {peer!r} sent parameters that are not a mapping")
        try:
            params = cls(**{k: obj.get(k, "pir-1 (unversioned)") if k == "format" else obj[k]
                            for k in cls.__dataclass_fields__})
        except (KeyError, TypeError) as exc:
            raise PirProtocolError(f"party {peer!r} sent parameters without {exc}") from exc
        params.check(peer)
        return params

    def check(self, peer: str) -> None:
        if self.format != FORMAT:
            raise PirProtocolError(
                f"party {peer!r} serves a PIR table of format {self.format!r}; this client "
                f"reads {FORMAT!r} only: upgrade the older side and rebuild its table "
                "(tables built before the X25519 OPRF, pir-2 and older, cannot be read)")
        ints = ("n_records", "record_bytes", "buckets", "slots", "columns", "lwe_n", "log_p")
        for name in ints:
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise PirProtocolError(f"party {peer!r}: parameter {name!r} is not a count")
        if (self.lwe_n, self.log_p) != (lwe.LWE_N, lwe.LOG_P):
            raise PirProtocolError(
                f"party {peer!r} uses LWE n={self.lwe_n}, log p={self.log_p}; this client "
                f"supports n={lwe.LWE_N}, log p={lwe.LOG_P} only"
            )
        if min(self.buckets, self.slots) < 1 or self.columns < 2:
            raise PirProtocolError(f"party {peer!r}: empty table geometry")
        if self.record_bytes > MAX_RECORD_BYTES:
            raise PirProtocolError(f"party {peer!r}: record_bytes above {MAX_RECORD_BYTES}")
        for name in ("seed", "salt"):
            if not isinstance(getattr(self, name), bytes) or len(getattr(self, name)) != 16:
                raise PirProtocolError(f"party {peer!r}: parameter {name!r} is not 16 bytes")


@dataclass
class Placement:
    """Where keys live: bucket, two candidate columns, tag and sealing key."""

    bucket: npt.NDArray[np.int64]
    col1: npt.NDArray[np.int64]
    col2: npt.NDArray[np.int64]
    tags: npt.NDArray[np.uint8]  # (n, TAG_BYTES)
    keys: npt.NDArray[np.uint8]  # (n, 16)


def key_bytes(value: object) -> bytes:
    """The canonical bytes of a key value (str as UTF-8, int as decimal)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int | np.integer):
        return str(int(value)).encode()
    raise PirInputError(f"key {value!r} is neither text, bytes nor an integer")


def material(prf_output: bytes, salt: bytes) -> bytes:
    """Per-key material from F(x): BLAKE2b keyed with the version's salt."""
    return hashlib.blake2b(
        prf_output, digest_size=MATERIAL_BYTES, key=salt, person=_PERSONAL
    ).digest()


def materials(prf_outputs: npt.NDArray[np.uint8], salt: bytes) -> npt.NDArray[np.uint8]:
    """:func:`material` of every row of (n, 32) PRF outputs, in C on every core."""
    out = np.empty((len(prf_outputs), MATERIAL_BYTES), np.uint8)
    _core.blake2b_rows_into(addresses(), np.ascontiguousarray(prf_outputs), salt, _PERSONAL,
                            out, oprf.threads())
    return out


def place(materials: npt.NDArray[np.uint8], buckets: int, columns: int) -> Placement:
    """Split (n, MATERIAL_BYTES) material into positions, tags and keys."""
    words = np.ascontiguousarray(materials[:, :12]).view("<u4").astype(np.int64)
    return Placement(
        bucket=words[:, 0] % buckets,
        col1=words[:, 1] % columns,
        col2=words[:, 2] % columns,
        tags=materials[:, 12 : 12 + TAG_BYTES],
        keys=materials[:, 20:36],
    )


def bucket_capacity(keys: int, buckets: int) -> int:
    """Queries per bucket for a batch of ``keys``: a public function of the count.

    The smallest t with buckets * P[Binomial(keys, 1/buckets) > t] <= 2^-40, so
    the padding never depends on which keys are asked (overflow is handled by
    splitting the batch, which happens with probability <= 2^-40).
    """
    if buckets == 1 or keys <= 1:
        return max(keys, 1) if buckets == 1 else 1
    i = np.arange(keys + 1, dtype=np.float64)
    log_pmf = (
        np.array([math.lgamma(keys + 1) - math.lgamma(x + 1) - math.lgamma(keys - x + 1)
                  for x in range(keys + 1)])
        + i * math.log(1.0 / buckets) + (keys - i) * math.log1p(-1.0 / buckets)
    )
    log_tail = np.logaddexp.accumulate(log_pmf[::-1])[::-1]  # log P[X >= i]
    bound = BATCH_FAILURE_LOG2 * math.log(2) - math.log(buckets)
    ok = np.flatnonzero(np.append(log_tail[1:], -np.inf) <= bound)  # P[X > t] small enough
    return int(ok[0])


def choose_buckets(n_records: int) -> int:
    """Row blocks for the batch code: 1 below 2^16 records, 32 from 2^20 on.

    More buckets make batches cheaper (fewer padded query rows per bucket, see
    :func:`bucket_capacity`) and the hint larger (it has one row per database
    row); 32 at 2^20 records gives a 140 MB hint and 1000-key batches at
    160 products per database byte.
    """
    if n_records < 1 << 16:
        return 1
    return int(min(32, 2 ** (int(math.log2(n_records)) - 15)))


def choose_slots(max_load: int, slot_bytes: int, buckets: int = 1) -> int:
    """Slots per column: a square bucket where the hint allows, else a small hint.

    A single-key query costs the client ``(columns + rows_per_bucket) * n``
    multiply-adds (A s, then H_b s) and the server ``rows * columns``; with
    ``columns * slots`` fixed by the load, the client's cost is smallest when
    a bucket is square (rows_per_bucket = columns). The hint has one row of
    ``n`` words per database row, so the square is taken only while the hint
    stays under :data:`HINT_CAP_BYTES`; past that (about 2^19 records and up)
    the slots fall back to the small-hint choice of SimplePIR-style tables
    (a tall matrix of few rows, ``sqrt(digits / 24)``). At least 4 slots for cuckoo.
    """
    per_slot = max_load / LOAD_FACTOR
    square = math.ceil(math.sqrt(per_slot / slot_bytes))
    small_hint = math.ceil(math.sqrt(per_slot * slot_bytes / 24) / slot_bytes)
    cap = HINT_CAP_BYTES // (buckets * slot_bytes * lwe.LWE_N * 4)
    return int(max(4, min(4096, max(small_hint, min(square, cap)))))


def check_records(keys: Sequence[bytes], records: Sequence[bytes] | None, record_bytes: int,
                  key_name: str) -> None:
    """Reject duplicate keys and over-long records, naming the rows."""
    if not 0 <= record_bytes <= MAX_RECORD_BYTES:
        raise PirInputError(f"record_bytes must be in [0, {MAX_RECORD_BYTES}], got {record_bytes}")
    seen: dict[bytes, int] = {}
    for row, key in enumerate(keys):
        first = seen.setdefault(key, row)
        if first != row:
            raise PirInputError(
                f"key column {key_name!r}: value {key!r} appears in rows {first} and {row}; "
                "keys must be unique (merge the records first)"
            )
    if records is None:
        return
    if len(records) != len(keys):
        raise PirInputError(f"{len(keys)} keys but {len(records)} records")
    for row, rec in enumerate(records):
        if len(rec) > record_bytes:
            raise PirInputError(
                f"row {row} (key {keys[row]!r}): record of {len(rec)} bytes exceeds the "
                f"declared maximum of {record_bytes}; raise record_bytes or trim the record"
            )


def records_fit(digests: npt.NDArray[np.void], records: Sequence[bytes] | None,
                record_bytes: int, n: int) -> bool:
    """True when the key digests are distinct and every record fits (vectorised); when
    False the caller runs :func:`check_records`, which names the rows."""
    if not 0 <= record_bytes <= MAX_RECORD_BYTES:
        return False
    if records is not None and (len(records) != n or max(map(len, records), default=0)
                                > record_bytes):
        return False
    ordered = np.sort(np.ascontiguousarray(digests).view(np.uint64).reshape(-1, 2)[:, 0])
    return not bool(np.any(ordered[1:] == ordered[:-1]))


@dataclass
class Layout:
    """Where every item of a version sits, so a rebuild can patch it (rebuild.py).

    ``table``: item index per slot (-1 free); ``digests``: key digests and
    ``records``: record digests, both in item order.
    """

    table: npt.NDArray[np.int64]
    digests: npt.NDArray[np.void]
    records: npt.NDArray[np.void]


@dataclass
class PirDatabase:
    """One built version: public parameters, the matrix, its hint, the OPRF key."""

    params: PirParams
    db: npt.NDArray[np.uint8]
    hint: npt.NDArray[np.uint32]
    oprf_key: PirOprfKey
    prf_cache: PrfCache | None = None
    layout: Layout | None = None

    def bucket_rows(self, bucket: int) -> npt.NDArray[np.uint8]:
        r = self.params.rows_per_bucket
        return self.db[bucket * r : (bucket + 1) * r]


def check_same_format(previous: PirDatabase) -> None:
    """Refuse to derive a version from one of another table format (its OPRF key and
    outputs belong to another PRF); the caller must build from scratch."""
    if previous.params.format != FORMAT or not isinstance(previous.oprf_key, PirOprfKey):
        raise PirInputError(
            f"the previous PIR table has format {previous.params.format!r}, this version "
            f"builds {FORMAT!r}: rebuild the table from scratch (build_database without "
            "previous; clients then download the new hint)")


def _geometry(mats: npt.NDArray[np.uint8], params: PirParams) -> tuple[PirParams, np.ndarray]:
    """Grow the column count until cuckoo placement succeeds; return the slot table."""
    columns = params.columns
    while True:
        pos = place(mats, params.buckets, columns)
        g1 = (pos.bucket * columns + pos.col1).astype(np.uint32)
        g2 = (pos.bucket * columns + pos.col2).astype(np.uint32)
        table, failed = _core.pir_cuckoo_place(g1, g2, params.buckets * columns, params.slots)
        if columns > MAX_COLUMNS:
            raise PirInputError(
                f"{params.n_records} records need {columns} columns per bucket, above the "
                f"{MAX_COLUMNS} the LWE parameters decode correctly; pass more buckets"
            )
        if failed < 0:
            return PirParams(**{**params.to_wire(), "columns": columns}), table
        columns = int(columns * 1.05) + 1


def _write_slots(db: np.ndarray, table: np.ndarray, slots: np.ndarray, params: PirParams) -> None:
    """Copy each placed slot's bytes down its column (C, one band of rows per thread)."""
    _core.pir_write_slots(db, params.buckets, params.slots, np.ascontiguousarray(table),
                          np.ascontiguousarray(slots), oprf.threads())


def build_database(
    keys: Sequence[bytes], records: Sequence[bytes] | None, record_bytes: int,
    key_name: str = "key", workers: int | None = None, buckets: int | None = None,
    previous: PirDatabase | None = None, tick: Callable[[int], None] | None = None,
) -> PirDatabase:
    """Server offline phase: OPRF every key, seal records, place, fill, compute the hint.

    ``buckets`` overrides :func:`choose_buckets` (tests use it to exercise the
    batch code on small tables). ``previous`` (an earlier version of the same
    server) keeps its OPRF key and reuses its OPRF outputs for keys it had, so
    a rebuild after a few records changed skips almost all of the OPRF; salt,
    seed and layout are fresh. ``workers`` is ignored (C threads use every core).
    ``tick`` is told the size of each OPRF batch done (progress display).
    """
    keys = keys if all(type(k) is bytes for k in keys) else [key_bytes(k) for k in keys]
    rec = records if record_bytes else None
    digests = key_digests(keys)
    if not records_fit(digests, rec, record_bytes, len(keys)):
        check_records(keys, rec, record_bytes, key_name)  # names the offending rows
    if previous is not None:
        check_same_format(previous)
    oprf_key = previous.oprf_key if previous is not None else PirOprfKey.generate()
    salt, seed = os.urandom(16), os.urandom(16)
    prf, cache, _ = prf_outputs(oprf_key, keys, digests, previous.prf_cache if previous else None,
                                tick)
    n = len(keys)
    mats = materials(prf, salt)
    sealed = seal_all(mats[:, 20:36], rec, record_bytes)
    buckets = buckets or choose_buckets(n)
    loads = np.bincount(place(mats, buckets, 2).bucket, minlength=buckets)
    draft = PirParams(os.urandom(8).hex(), n, record_bytes, buckets, 1, 2, seed, salt)
    slots = choose_slots(int(loads.max(initial=0)), draft.slot_bytes, buckets)
    columns = max(2, math.ceil(int(loads.max(initial=0)) / (LOAD_FACTOR * slots)))
    params, table = _geometry(mats, PirParams(**{**draft.to_wire(), "slots": slots,
                                                 "columns": columns}))
    slot_bytes = np.concatenate([mats[:, 12 : 12 + TAG_BYTES], sealed], axis=1)
    db = Prg().fill(np.empty((params.rows, params.columns), dtype=np.uint8))
    _write_slots(db, table, slot_bytes, params)
    a_t = np.ascontiguousarray(lwe.expand_matrix(seed, params.columns, lwe.LWE_N).T)
    layout = Layout(table, digests, record_digests(rec, n))
    return PirDatabase(params, db, lwe.hint(db, a_t), oprf_key, cache, layout)
