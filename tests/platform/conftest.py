"""A node in a temporary directory with one account per role, and a client per account."""

from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from fastapi.testclient import TestClient

from meshmpc.platform.api import create_app
from meshmpc.platform.node import Node, init_node

PASSWORD = "correct horse battery"
ROLE_USERS = {"ana": ["analyst"], "appr": ["approver"], "appr2": ["approver"],
              "sec": ["security"], "aud": ["auditor"], "editor": ["strategy_editor"]}


def otp_of(uri):
    if uri is None:
        return None
    secret = parse_qs(urlparse(uri).query)["secret"][0]
    return pyotp.TOTP(secret)


class NodeClients:
    def __init__(self, node, app):
        self.node, self.app, self.otps, self.tokens = node, app, {}, {}

    def token(self, name):
        if name not in self.tokens:
            client = TestClient(self.app)
            otp = self.otps.get(name)
            r = client.post("/api/v1/auth/login", json={
                "name": name, "password": PASSWORD, "otp": otp.now() if otp else None,
                "kind": "token"})
            assert r.status_code == 200, r.text
            self.tokens[name] = r.json()["token"]
        return self.tokens[name]

    def as_user(self, name):
        client = TestClient(self.app)
        client.headers["Authorization"] = f"Bearer {self.token(name)}"
        return client


@pytest.fixture(scope="session")
def postgres():
    from .postgres import PostgresServer

    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Every node test runs on SQLite (the default) and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return ""
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def gov_node(tmp_path, db_url):
    config, uri = init_node(tmp_path / "gov", "gov", "root", PASSWORD, db=db_url,
                            password_memory_mb=8)
    node = Node(config)
    clients = NodeClients(node, create_app(node))
    clients.otps["root"] = otp_of(uri)
    for name, roles in ROLE_USERS.items():
        clients.otps[name] = otp_of(node.accounts.create_user(name, PASSWORD, roles))
    return clients
