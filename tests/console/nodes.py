"""A node started as its own process (``meshmpc node serve``) on free loopback ports."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pyotp

from meshmpc.net.local import free_ports
from meshmpc.platform.node import Node, init_node

PASSWORD = "correct horse battery"
USERS = {"ana": ["analyst"], "appr": ["approver"], "sec": ["security"], "aud": ["auditor"],
         "editor": ["strategy_editor"]}


def _port() -> int:
    return free_ports(1)[0]  # below the ephemeral range: no outgoing connection takes it


def _totp(uri: str | None) -> pyotp.TOTP | None:
    return pyotp.TOTP(parse_qs(urlparse(uri).query)["secret"][0]) if uri else None


class RunningNode:
    def __init__(self, tmp_path: Path, party: str) -> None:
        self.party, self.http, self.mesh = party, _port(), _port()
        config, uri = init_node(tmp_path / party, party, "root", PASSWORD,
                                http_listen=f"127.0.0.1:{self.http}",
                                mesh_listen=f"127.0.0.1:{self.mesh}", password_memory_mb=8)
        node = Node(config)
        self.public_key = node.identity.public_b64
        self.otps = {"root": _totp(uri)}
        for name, roles in USERS.items():
            self.otps[name] = _totp(node.accounts.create_user(name, PASSWORD, roles))
        self.dir = config.directory
        self.url = f"http://127.0.0.1:{self.http}"
        self.proc = subprocess.Popen([sys.executable, "-m", "meshmpc.cli", "node", "serve",
                                      "--dir", str(self.dir)], env={**os.environ},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                httpx.get(self.url + "/api/v1/health", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"node {self.party} did not start")

    def otp(self, name: str) -> str:
        totp = self.otps.get(name)
        return totp.now() if totp else ""

    def client(self, name: str) -> httpx.Client:
        r = httpx.post(self.url + "/api/v1/auth/login", json={
            "name": name, "password": PASSWORD, "otp": self.otp(name) or None, "kind": "token"})
        assert r.status_code == 200, r.text
        return httpx.Client(base_url=self.url + "/api/v1", timeout=30,
                            headers={"Authorization": f"Bearer {r.json()['token']}"})

    def pair(self, other: RunningNode) -> None:
        r = self.client("root").put(f"/peers/{other.party}", json={
            "address": f"127.0.0.1:{other.mesh}", "public_key": other.public_key,
            "api_url": other.url})
        assert r.status_code == 200, r.text

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
