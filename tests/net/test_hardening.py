"""Strangers cannot stop or starve a mesh; operator features of start-up and shutdown.

Each test plays an attacker with plain sockets against a real TcpMesh on
loopback (issue #10 defects 1-3) or checks a start-up feature (issue #11).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os

import numpy as np
import pytest

from meshmpc.net import codec, framing
from meshmpc.net.config import ClusterConfig
from meshmpc.net.errors import (
    ConfigMismatchError,
    MalformedMessageError,
    NetworkError,
    PeerDisconnectedError,
)
from meshmpc.net.keys import IdentityKey
from meshmpc.net.local import make_local_cluster
from meshmpc.net.secure import pack_hello
from meshmpc.net.tcp import TcpMesh


def _fake_hello(claim: str, fingerprint: bytes | None = None) -> bytes:
    body = pack_hello(claim, fingerprint or os.urandom(32), os.urandom(32))
    return framing.pack_header(len(body), 0, framing.HELLO) + body


async def _poke(port: int, data: bytes, linger: float = 0.0) -> bytes:
    """Connect, send ``data``, wait ``linger`` s, read what came back, disconnect."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    await asyncio.sleep(linger)
    got = b""
    with contextlib.suppress(TimeoutError, ConnectionError):
        got = await asyncio.wait_for(reader.read(4096), 0.05 if linger else 0.01)
    writer.transport.abort()
    return got


async def _pair(config: ClusterConfig, ids: dict[str, IdentityKey], **kw) -> list[TcpMesh]:
    return list(await asyncio.gather(
        *(TcpMesh.connect(config, p, ids[p], **kw) for p in config.party_ids)
    ))


def test_impostor_hello_and_disconnect_do_not_touch_a_running_session(run_checked) -> None:
    async def main() -> None:
        config, ids = make_local_cluster(["a", "b"], connect_timeout_s=5)
        a, b = await _pair(config, ids)
        port = config.party("b").port
        waiting = asyncio.ensure_future(b.recv("a", "m"))
        for claim in ["a", "b", "mallory"]:  # a fake HELLO, then the connection drops
            await _poke(port, _fake_hello(claim, config.fingerprint))
        await _poke(port, b"\x00" * 13 + b"garbage")
        await _poke(port, _fake_hello("a") + framing.pack_header(64, 0, framing.AUTH)
                    + os.urandom(64))
        await asyncio.sleep(0.1)
        await a.send("b", "m", "still here")
        assert await asyncio.wait_for(waiting, 5) == "still here"
        assert b.rejected >= 4 and set(b.connections) == {b.links["a"]}
        await asyncio.gather(a.close(), b.close())

    run_checked(main())


def test_impostor_cannot_abort_start_up(run_checked) -> None:
    async def main() -> None:
        config, ids = make_local_cluster(["a", "b"], connect_timeout_s=5)
        start_b = asyncio.ensure_future(TcpMesh.connect(config, "b", ids["b"]))
        await asyncio.sleep(0.1)
        await _poke(config.party("b").port, _fake_hello("a", config.fingerprint))
        impostor = IdentityKey.generate("a")
        with pytest.raises(NetworkError):  # an unpinned key claiming a is only dropped
            await TcpMesh.connect(dataclasses.replace(config, connect_timeout_s=0.3), "a",
                                  impostor, on_waiting=None)
        assert not start_b.done()
        a = await TcpMesh.connect(config, "a", ids["a"])
        b = await start_b
        await a.send("b", "m", 1)
        assert await b.recv("a", "m") == 1
        await asyncio.gather(a.close(), b.close())

    run_checked(main())


def test_preauth_records_are_capped_and_buffers_stay_small(run_checked) -> None:
    async def main() -> None:
        config, ids = make_local_cluster(["a", "b"], connect_timeout_s=5)
        start = asyncio.ensure_future(TcpMesh.connect(config, "b", ids["b"]))
        await asyncio.sleep(0.1)
        port = config.party("b").port
        # a 13-byte header announcing a 16 MiB HELLO is refused before any buffering
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(framing.pack_header(16 << 20, 0, framing.HELLO))
        assert len(await asyncio.wait_for(reader.read(4096), 2)) < 300  # only b's HELLO
        assert await asyncio.wait_for(reader.read(4096), 2) == b""  # then b closed it
        writer.close()
        # a partial HELLO: the stranger's connection holds under 1 KiB of buffer
        _r, slow = await asyncio.open_connection("127.0.0.1", port)
        slow.write(framing.pack_header(200, 0, framing.HELLO) + b"x" * 100)
        await asyncio.sleep(0.1)
        mesh = next(iter(m for m in _meshes_of(start)))
        assert [c.reader.capacity for c in mesh.connections] == [
            c.reader.capacity for c in mesh.connections if c.reader.capacity <= 1024
        ]
        slow.close()
        start.cancel()
        await asyncio.gather(start, return_exceptions=True)
        await mesh.close()

    run_checked(main())


def _meshes_of(task: asyncio.Future) -> list[TcpMesh]:
    """The TcpMesh a pending ``TcpMesh.connect`` task is starting (found via its frame)."""
    coro = task.get_coro()  # type: ignore[attr-defined]
    return [coro.cr_frame.f_locals["mesh"]]


def test_handshake_deadline_and_cap_on_pending_handshakes(run_checked) -> None:
    async def main() -> None:
        config, ids = make_local_cluster(["a", "b"], connect_timeout_s=5)
        config = dataclasses.replace(config, handshake_timeout_s=0.4, max_handshakes=4)
        start = asyncio.ensure_future(TcpMesh.connect(config, "b", ids["b"]))
        await asyncio.sleep(0.1)
        mesh = _meshes_of(start)[0]
        port = config.party("b").port
        conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(10)]
        await asyncio.sleep(0.1)
        assert len(mesh.connections) <= 4  # the oldest were dropped for the newest
        await asyncio.sleep(0.6)
        assert len(mesh.connections) == 0  # the rest timed out
        for reader, writer in conns:  # every one was closed by b
            data = await asyncio.wait_for(reader.read(), 2)
            assert len(data) < 300
            writer.close()
        a = await TcpMesh.connect(config, "a", ids["a"])  # the real peer still gets in
        b = await start
        await asyncio.gather(a.close(), b.close())

    run_checked(main())


def test_dead_connections_are_forgotten_at_once(run_checked) -> None:
    async def main() -> None:
        config, ids = make_local_cluster(["a", "b"], connect_timeout_s=5)
        a, b = await _pair(config, ids)
        for _ in range(10):
            await _poke(config.party("b").port, framing.pack_header(16 << 20, 0, 1))
        await asyncio.sleep(0.1)
        assert b.connections == {b.links["a"]}
        await asyncio.gather(a.close(), b.close())

    run_checked(main())


async def _authenticated_pair() -> tuple[TcpMesh, TcpMesh]:
    config, ids = make_local_cluster(["a", "b"], connect_timeout_s=5)
    a, b = await _pair(config, ids)
    return a, b


def test_announced_large_message_does_not_allocate_its_size(run_checked) -> None:
    async def main() -> None:
        a, b = await _authenticated_pair()
        session = a.peer_sessions["b"]
        announce = codec.pack(["t", codec.KIND_RAW_ARRAY, ["<u1", [512 << 20], 512 << 20]])
        session.emit(framing.BATCH, announce)
        session.emit(framing.CHUNK, bytes(1 << 20))
        await asyncio.sleep(0.2)
        receiving = b.links["a"]._raw
        assert receiving is not None and receiving.total == 512 << 20
        assert receiving.buffer.nbytes <= 2 << 20  # what arrived, not what was announced
        await asyncio.gather(a.close(), b.close())

    run_checked(main())


def test_message_over_the_cluster_limit_is_refused(run_checked) -> None:
    async def main() -> NetworkError:
        config, ids = make_local_cluster(["a", "b"], connect_timeout_s=5)
        config = dataclasses.replace(config, max_message_bytes=1 << 20)
        a, b = await _pair(config, ids)
        await a.send("b", "m", np.zeros(2 << 20, dtype=np.uint8))
        with pytest.raises(MalformedMessageError) as info:
            await asyncio.wait_for(b.recv("a", "m"), 5)
        await asyncio.gather(a.close(), b.close())
        return info.value

    err = run_checked(main())
    assert err.peer == "a" and "exceeds the message limit of 1048576" in str(err)


def test_received_large_messages_are_intact(run_checked) -> None:
    async def main() -> None:
        a, b = await _authenticated_pair()
        arr = np.arange(5 << 20, dtype=np.int64).reshape(5, -1)  # 40 MiB, 40 chunks
        blob = {"k": [b"x" * 70_000, list(range(20_000))]}
        await a.send("b", "arr", arr)
        await a.send("b", "blob", blob)
        got = await b.recv("a", "arr")
        assert got.dtype == np.int64 and got.shape == arr.shape and np.array_equal(got, arr)
        got[0, 0] = -1  # the received array is writable
        assert await b.recv("a", "blob") == blob
        await asyncio.gather(a.close(), b.close())

    run_checked(main())


def test_fingerprint_mismatch_names_both_fingerprints(run_checked) -> None:
    async def main() -> list[BaseException | TcpMesh]:
        config, ids = make_local_cluster(["a", "b"], connect_timeout_s=3)
        other = dataclasses.replace(config, max_message_bytes=1 << 20)
        return await asyncio.gather(
            TcpMesh.connect(config, "a", ids["a"]), TcpMesh.connect(other, "b", ids["b"]),
            return_exceptions=True,
        )

    err_a, err_b = run_checked(main())
    for err, peer in [(err_a, "b"), (err_b, "a")]:
        assert isinstance(err, ConfigMismatchError) and err.peer == peer
    config_fps = {str(e).split("fingerprint ")[1][:16] for e in (err_a, err_b)}
    assert len(config_fps) == 2 and all(fp in str(err_a) for fp in config_fps)


def test_a_mesh_over_some_parties_does_not_wait_for_the_others(run_checked) -> None:
    async def main() -> None:
        config, ids = make_local_cluster(["bank", "gov", "fin", "telco"], connect_timeout_s=5)
        bank, gov = await asyncio.gather(
            *(TcpMesh.connect(config, p, ids[p], parties=["gov", "bank"]) for p in ["bank", "gov"])
        )
        assert bank.parties == ["bank", "gov"] and bank.peers == ["gov"]
        await gov.send("bank", "m", "hi")
        assert await bank.recv("gov", "m") == "hi"
        with pytest.raises(ValueError, match="unknown peer"):
            await bank.send("fin", "m", 1)
        await asyncio.gather(bank.close(), gov.close())

    run_checked(main())


def test_start_up_order_does_not_matter_and_waiting_is_reported(run_checked) -> None:
    async def main() -> list[str]:
        config, ids = make_local_cluster(["a", "b", "c"], connect_timeout_s=10)
        lines: list[str] = []
        first = asyncio.ensure_future(TcpMesh.connect(
            config, "c", ids["c"], on_waiting=lines.append, wait_report_s=0.2))
        await asyncio.sleep(0.7)
        second = asyncio.ensure_future(TcpMesh.connect(config, "a", ids["a"]))
        await asyncio.sleep(0.5)
        meshes = [await TcpMesh.connect(config, "b", ids["b"]), await first, await second]
        await asyncio.gather(*(m.close() for m in meshes))
        return lines

    lines = run_checked(main())
    port_a = lines[0].split("a at 127.0.0.1:")[1].split(",")[0]
    assert port_a.isdigit() and "waiting for a at 127.0.0.1:" in lines[0]
    assert any(" s of 10 s" in line for line in lines)


def test_a_party_that_stops_with_an_error_tells_its_peers_why(run_checked) -> None:
    async def main() -> str:
        config, ids = make_local_cluster(["a", "b", "c"], connect_timeout_s=5)
        a, b, c = await _pair(config, ids)
        waits = [asyncio.ensure_future(m.recv("a", "result")) for m in (b, c)]
        await a.close(ValueError("bank.csv row 17: column 'credit_code' is empty\nmore"))
        messages = []
        for fut in waits:
            with pytest.raises(PeerDisconnectedError) as info:
                await asyncio.wait_for(fut, 5)
            messages.append(str(info.value))
        await asyncio.gather(b.close(), c.close())
        assert messages[0] == messages[1]
        return messages[0]

    message = run_checked(main())
    assert message == ("link to a: peer stopped with an error: ValueError: bank.csv row 17: "
                       "column 'credit_code' is empty more")


def test_listen_address_is_separate_from_the_advertised_one(run_checked) -> None:
    async def main() -> None:
        config, ids = make_local_cluster(["a", "b"], connect_timeout_s=5)
        b_entry = dataclasses.replace(config.party("b"), listen_host="0.0.0.0")
        config = dataclasses.replace(config, parties=[config.party("a"), b_entry])
        a, b = await _pair(config, ids)
        assert b._server is not None
        assert b._server.sockets[0].getsockname()[0] == "0.0.0.0"
        await a.send("b", "m", 7)
        assert await b.recv("a", "m") == 7
        await asyncio.gather(a.close(), b.close())

    run_checked(main())


def test_port_in_use_is_one_clear_error(run_checked) -> None:
    async def main() -> NetworkError:
        config, ids = make_local_cluster(["a", "b"], connect_timeout_s=1)
        squatter = await asyncio.start_server(lambda r, w: None, "127.0.0.1",
                                              config.party("a").port)
        try:
            with pytest.raises(NetworkError) as info:
                await TcpMesh.connect(config, "a", ids["a"], on_waiting=None)
        finally:
            squatter.close()
            await squatter.wait_closed()
        return info.value

    err = run_checked(main())
    assert "a cannot listen on 127.0.0.1:" in str(err) and "listen" in str(err)
