"""Merkle roots and proofs of consent references; retention purge."""

import time

import pytest

from meshmpc.platform.consent import (
    DEFAULT_PURPOSES,
    ConsentError,
    check_request,
    merkle_proof,
    merkle_root,
    verify_proof,
)
from meshmpc.platform.models import Job
from meshmpc.platform.retention import purge


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 33])
def test_every_reference_proves_membership(n):
    refs = [f"c{i}" for i in range(n)]
    root = merkle_root(refs)
    for i, ref in enumerate(refs):
        assert verify_proof(ref, merkle_proof(refs, i), root)
    assert not verify_proof("c-outsider", merkle_proof(refs, 0), root)
    if n > 1:
        assert merkle_root(refs[::-1]) != root


def test_requests_need_purpose_and_consent():
    with pytest.raises(ConsentError, match="purpose is required"):
        check_request(None, ["c1"], DEFAULT_PURPOSES)
    with pytest.raises(ConsentError, match="consent references"):
        check_request("credit_approval", [], DEFAULT_PURPOSES)
    assert check_request("credit_approval", ["c1", "c2"], DEFAULT_PURPOSES)[0] == 2


def test_purge_deletes_only_expired_jobs(gov_node):
    node = gov_node.node
    for job_id, expires in (("old", time.time() - 10), ("new", time.time() + 86400)):
        (node.config.directory / "jobs" / job_id).mkdir(parents=True)
        (node.config.directory / "jobs" / job_id / "scores.parquet").write_bytes(b"x" * 100)
        with node.db.session() as s:
            s.add(Job(id=job_id, name="j", initiator="gov", spec="{}", submitted_by="ana",
                      purpose="credit_approval", expires=expires, state="Succeeded"))
    listed = purge(node, dry_run=True)
    assert [i.job for i in listed] == ["old"] and listed[0].bytes == 100
    assert (node.config.directory / "jobs" / "old").exists()
    assert [i.job for i in purge(node)] == ["old"]
    assert not (node.config.directory / "jobs" / "old").exists()
    assert (node.config.directory / "jobs" / "new").exists()
    assert purge(node) == []
    assert node.audit.search(kind="data.purge")[0]["detail"]["job"] == "old"
