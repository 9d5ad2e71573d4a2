"""Private set intersection: align rows across parties without revealing the rest.

Module map (dependency order):

* :mod:`errors` - PsiError, PsiInputError (file/column/rows), PsiMismatchError.
* :mod:`io` - CSV/Parquet inputs streamed with keys as text; atomic outputs.
* :mod:`keys` - composite keys, trim/case-fold, empty and duplicate keys with
  row numbers, BLAKE2b-128 digests computed in C.
* :mod:`common` - parameter agreement, outcomes, truncation, canonical order.
* :mod:`group` - X25519 hash-to-group and exponentiation in worker processes.
* :mod:`ecdh` - two-party ECDH PSI (HFH99), also cardinality-only.
* :mod:`kkrt` - two-party OPRF PSI from OT extension and cuckoo hashing (KKRT16).
* :mod:`multiparty` - multi-party ECDH PSI (receiver only, cardinality, or results to all).
* :mod:`unbalanced` - OPRF PSI with the large set preprocessed once and cached.
* :mod:`protocols` - dispatch by protocol name.
* :mod:`align` - aligned outputs (inner, left, difference).
* :mod:`stream`, :mod:`bucketed` - bucketing by key hash for inputs of any size.
* :mod:`spec`, :mod:`job` - one party's job, file in to file out.
* :mod:`cli` - ``meshmpc psi``.

Adding a protocol: write ``async def x_receiver/x_sender(ctx, peer, digests,
peer_size, reveal) -> PsiOutcome`` over 16-byte digests, add it to
:mod:`protocols`, document it in ``protocols/psi-x.md`` and parametrise the
tests in ``tests/psi/test_job.py`` over it.
"""

from meshmpc.psi.align import Mode
from meshmpc.psi.common import PsiOutcome, Reveal
from meshmpc.psi.errors import PsiError, PsiInputError, PsiMismatchError
from meshmpc.psi.job import run_job
from meshmpc.psi.keys import KeyOptions, KeyReport
from meshmpc.psi.spec import PsiJob, PsiSummary

__all__ = [
    "KeyOptions", "KeyReport", "Mode", "PsiError", "PsiInputError", "PsiJob",
    "PsiMismatchError", "PsiOutcome", "PsiSummary", "Reveal", "run_job",
]
