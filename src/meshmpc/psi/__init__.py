"""Private set intersection: align rows across parties without revealing the rest.

Layers: :mod:`keys` (composite keys, normalisation, digests), :mod:`io` (CSV,
Parquet, atomic outputs), protocols (:mod:`ecdh`), :mod:`align` (aligned
outputs) and :mod:`job` (file in, file out); :mod:`cli` is ``meshmpc psi``.
"""

from meshmpc.psi.align import Mode
from meshmpc.psi.common import PsiOutcome, Reveal
from meshmpc.psi.errors import PsiError, PsiInputError, PsiMismatchError
from meshmpc.psi.job import PsiJob, PsiSummary, run_job
from meshmpc.psi.keys import KeyOptions, KeyReport

__all__ = [
    "KeyOptions", "KeyReport", "Mode", "PsiError", "PsiInputError", "PsiJob",
    "PsiMismatchError", "PsiOutcome", "PsiSummary", "Reveal", "run_job",
]
