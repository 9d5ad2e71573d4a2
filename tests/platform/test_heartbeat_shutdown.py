"""The node's heartbeat loop ends when the server shuts down (it used to swallow the cancel)."""

import asyncio
import threading
import time

from fastapi.testclient import TestClient

from meshmpc.platform import api_peer
from meshmpc.platform.api import create_app
from meshmpc.platform.node import Node, init_node

from .conftest import PASSWORD


def test_heartbeat_loop_stops_with_the_server(tmp_path, monkeypatch):
    config, _ = init_node(tmp_path / "gov", "gov", "root", PASSWORD, password_memory_mb=8)
    node = Node(config)
    tasks: list[asyncio.Task] = []
    real_loop = api_peer.heartbeat_loop

    async def recorded(orchestrator):
        tasks.append(asyncio.current_task())
        await real_loop(orchestrator)

    monkeypatch.setattr(api_peer, "heartbeat_loop", recorded)
    monkeypatch.setattr(api_peer, "HEARTBEAT_S", 0.05)
    app = create_app(node)
    finished = threading.Event()

    def serve_briefly():
        with TestClient(app) as client:
            assert client.get("/api/v1/health").status_code == 200
            time.sleep(0.3)  # several beats, so the cancel lands in the loop's sleep
        finished.set()

    thread = threading.Thread(target=serve_briefly, daemon=True)
    thread.start()
    assert finished.wait(20), "the server's shutdown waited on the heartbeat loop"
    assert len(tasks) == 1 and tasks[0].done() and tasks[0].cancelled()
