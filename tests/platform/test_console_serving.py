"""The node serves the built console at / (client routes fall back to index.html), keeps JSON
errors under /api, says how to build a missing bundle, and includes routers of other packages."""

from importlib.metadata import EntryPoint

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from meshmpc.platform import plugins
from meshmpc.platform.api import create_app
from meshmpc.platform.node import Node, init_node

PASSWORD = "correct horse battery"


@pytest.fixture
def node(tmp_path):
    config, _ = init_node(tmp_path / "bank", "bank", "root", PASSWORD, password_memory_mb=8)
    return Node(config)


@pytest.fixture
def bundle(tmp_path, monkeypatch):
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><div id=root>console-index</div>")
    (root / "assets" / "app.js").write_text("console.log('app')")
    monkeypatch.setenv("MESHMPC_CONSOLE_DIR", str(root))
    return root


def test_bundle_and_client_routes_served(node, bundle):
    client = TestClient(create_app(node, heartbeats=False))
    for path in ("/", "/jobs", "/jobs/abc123", "/data"):
        r = client.get(path)
        assert r.status_code == 200 and "console-index" in r.text, path
        assert r.headers["x-frame-options"] == "DENY"
    js = client.get("/assets/app.js")
    assert js.status_code == 200 and js.text == "console.log('app')"
    assert "javascript" in js.headers["content-type"]
    assert client.get("/api/v1/health").json()["party"] == "bank"


def test_unknown_api_path_keeps_json_error(node, bundle):
    client = TestClient(create_app(node, heartbeats=False))
    r = client.get("/api/v1/no-such-thing")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/jobs").status_code == 401  # the mount does not bypass auth


def test_missing_bundle_says_how_to_build(node, tmp_path, monkeypatch):
    monkeypatch.setenv("MESHMPC_CONSOLE_DIR", str(tmp_path / "absent"))
    client = TestClient(create_app(node, heartbeats=False))
    r = client.get("/jobs")
    assert r.status_code == 503 and "make console" in r.text
    assert client.get("/api/v1/nope").json()["error"]["code"] == "not_found"


def _router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/plugin-test")

    @router.get("/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}
    return router


def _not_a_router() -> str:
    return "oops"


def _fake_entry_points(*values):
    eps = [EntryPoint(name=f"p{i}", value=v, group=plugins.ROUTER_GROUP)
           for i, v in enumerate(values)]
    return lambda group: [e for e in eps if e.group == group]


def test_registered_router_is_included(node, bundle, monkeypatch):
    monkeypatch.setattr(plugins, "entry_points",
                        _fake_entry_points(f"{__name__}:_router"))
    client = TestClient(create_app(node, heartbeats=False))
    assert client.get("/api/v1/plugin-test/ping").json() == {"pong": "yes"}


@pytest.mark.parametrize("value,cause", [(f"{__name__}:_not_a_router", "not a FastAPI"),
                                         ("no_such_module_xyz:router", "ModuleNotFoundError")])
def test_broken_router_named_with_cause(node, monkeypatch, value, cause):
    monkeypatch.setattr(plugins, "entry_points", _fake_entry_points(value))
    with pytest.raises(plugins.PluginRouterError, match=f"'p0'.*{cause}"):
        create_app(node, heartbeats=False)
