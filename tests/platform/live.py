"""Real nodes on loopback for the multi-node tests, each `meshmpc node serve` a process."""

import os
import signal
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlparse

import httpx
import pyotp

from meshmpc.net.local import free_ports
from meshmpc.platform.node import Node, init_node

PASSWORD = "correct horse battery"

REFS = [f"consent-2026-{i:05d}" for i in range(40)]


def _body(spec):
    return {"spec": spec, "purpose": "credit_approval", "consent_refs": REFS}


def _port():
    return free_ports(1)[0]  # below the ephemeral range: no outgoing connection takes it


def _totp(uri):
    return pyotp.TOTP(parse_qs(urlparse(uri).query)["secret"][0])


class RunningNode:
    def __init__(self, tmp_path, party):
        self.party, self.http, self.mesh = party, _port(), _port()
        config, uri = init_node(tmp_path / party, party, "root", PASSWORD,
                                http_listen=f"127.0.0.1:{self.http}",
                                mesh_listen=f"127.0.0.1:{self.mesh}", password_memory_mb=8)
        node = Node(config)
        self.public_key = node.identity.public_b64
        self.otps = {"root": _totp(uri)}
        for name, roles in {"ana": ["analyst"], "appr": ["approver"], "sec": ["security"]}.items():
            uri = node.accounts.create_user(name, PASSWORD, roles)
            self.otps[name] = _totp(uri) if uri else None
        self.dir = config.directory
        self.url = f"http://127.0.0.1:{self.http}"
        self.proc = subprocess.Popen([sys.executable, "-m", "meshmpc.cli", "node", "serve",
                                      "--dir", str(self.dir)], env={**os.environ},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                httpx.get(self.url + "/api/v1/health", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"node {party} did not start")

    def client(self, name):
        otp = self.otps.get(name)
        r = httpx.post(self.url + "/api/v1/auth/login", json={
            "name": name, "password": PASSWORD, "otp": otp.now() if otp else None,
            "kind": "token"})
        assert r.status_code == 200, r.text
        return httpx.Client(base_url=self.url + "/api/v1", timeout=30,
                            headers={"Authorization": f"Bearer {r.json()['token']}"})

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)


def _wait_state(client, job_id, states, timeout=90):
    deadline = time.time() + timeout
    job = {}
    while time.time() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job.get("state") in states:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job stayed {job.get('state')}: {job}")


