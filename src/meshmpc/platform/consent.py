"""Purpose and consent on every use of another party's data, and retention by purpose.

Every job, PIR lookup batch, online score and batch request carries a
*purpose* from the node's configured list and the *consent references* the
requester holds for the people concerned (PIPL Art. 13/23: separate consent
before data goes to another party; the credit-reporting rules: written consent
for credit queries). The requester records the references themselves; the
data owner receives only their count and a Merkle root (SHA-256, RFC 6962
style with domain-separated leaves and nodes), checks the purpose against its
grants, and keeps ``(requester, purpose, count, root)`` per batch. Either side
can later show that a given reference was part of a batch with a short proof,
without revealing whom the others concern.

Purposes also fix how long a job's artefacts are kept (:data:`DEFAULT_PURPOSES`,
days; overridable per node): :func:`meshmpc.platform.retention.purge` deletes
what has expired.
"""

from __future__ import annotations

from meshmpc.data.consent import (
    DEFAULT_PURPOSES,
    MAX_REFS,
    ConsentError,
    check_request,
    consent_fields,
    merkle_proof,
    merkle_root,
    verify_proof,
)

__all__ = ["DEFAULT_PURPOSES", "MAX_REFS", "ConsentError", "check_request", "consent_fields",
           "merkle_proof", "merkle_root", "verify_proof"]
