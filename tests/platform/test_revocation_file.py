"""A peer key revoked at a node reaches the links of jobs already running there: every job's
cluster config names the node's revocation file, which the net layer re-reads."""

import time
import tomllib

from meshmpc.net.config import parse_config
from meshmpc.net.keys import IdentityKey, public_key_from_b64
from meshmpc.platform import keyring


def test_revoked_peer_key_is_in_the_file_every_job_config_names(gov_node, tmp_path):
    node, orchestrator = gov_node.node, gov_node.app.state.orchestrator
    old, new = IdentityKey.generate("bank"), IdentityKey.generate("bank")
    r = gov_node.as_user("root").put("/api/v1/peers/bank", json={
        "address": "127.0.0.1:9", "public_key": old.public_b64})
    assert r.status_code == 200, r.text
    config = parse_config(tomllib.loads(orchestrator._cluster_toml(["gov", "bank"])))
    assert config.revocation_file is not None and config.revocation_file.exists()
    assert not config.is_revoked(public_key_from_b64(old.public_b64))

    # the job above keeps running; bank's old key is revoked afterwards
    r = gov_node.as_user("root").put("/api/v1/peers/bank", json={
        "address": "127.0.0.1:9", "public_key": new.public_b64})
    assert r.status_code == 200, r.text
    assert keyring.apply_revocation(node, "bank", [old.public_b64], "sec", "leaked") == [
        old.public_b64]
    assert old.public_b64 in config.revocation_file.read_text()
    config.revocation_file.touch()  # the reader caches by mtime for a second
    time.sleep(1.1)
    assert config.is_revoked(public_key_from_b64(old.public_b64))
    assert not config.is_revoked(public_key_from_b64(new.public_b64))
