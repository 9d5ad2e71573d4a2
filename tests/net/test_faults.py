"""Bad input and faults: each raises a specific error naming the peer, never hangs.

A man-in-the-middle proxy sits on the address party "a" dials for party "b"
and mutates the encrypted record stream from a to b: it flips a bit, replays,
drops or truncates a record, or cuts the connection inside a large message.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from meshmpc.net import framing
from meshmpc.net.config import ClusterConfig
from meshmpc.net.context import Context
from meshmpc.net.errors import (
    ConnectTimeoutError,
    DroppedFrameError,
    FrameTooLargeError,
    NetworkError,
    PeerDisconnectedError,
    ReplayedFrameError,
    TamperedFrameError,
    TruncatedFrameError,
)
from meshmpc.net.keys import IdentityKey
from meshmpc.net.local import free_ports, make_local_cluster
from meshmpc.net.tcp import TcpMesh

# A mutation gets (index of the data record, its bytes) and returns what to forward,
# or None to cut the connection after forwarding the bytes returned so far.
Mutation = Callable[[int, bytes], list[bytes] | None]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _pipe_records(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, mutate: Mutation
) -> None:
    records = framing.RecordReader(max_frame=1 << 30)
    index = 0
    try:
        while data := await reader.read(1 << 16):
            for header, counter, rtype, body in records.feed(data):
                raw = header + body
                out: list[bytes] | None = [raw]
                if rtype in (framing.BATCH, framing.CHUNK) and counter >= 1:  # after handshake
                    out = mutate(index, raw)
                    index += 1
                for piece in out or []:
                    writer.write(piece)
                await writer.drain()
                truncated = bool(out) and len(out[-1]) < len(raw)  # type: ignore[index]
                if out is None or truncated:
                    return
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _proxy(listen_port: int, target_port: int, mutate: Mutation) -> asyncio.Server:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        for _ in range(100):  # b may not be listening yet
            try:
                tr, tw = await asyncio.open_connection("127.0.0.1", target_port)
                break
            except OSError:
                await asyncio.sleep(0.02)
        await asyncio.gather(_pipe_records(r, tw, mutate), _pipe(tr, w))

    return await asyncio.start_server(handle, "127.0.0.1", listen_port)


def _via_proxy(config: ClusterConfig, party: str, port: int) -> ClusterConfig:
    parties = [dataclasses.replace(p, port=port) if p.id == party else p for p in config.parties]
    return dataclasses.replace(config, parties=parties)


async def _fault_run(mutate: Mutation, send: Callable[[Context], Any]) -> NetworkError:
    """Start a and b with a proxy on a->b, run ``send`` on a, return b's receive error.

    Links are not resumed here (``resume_grace_s = 0``): these tests check what the
    record layer detects on one connection; tests/net/test_resume.py checks recovery."""
    config, ids = make_local_cluster(["a", "b"], connect_timeout_s=5)
    config = dataclasses.replace(config, resume_grace_s=0.0)
    (proxy_port,) = free_ports(1)
    proxy = await _proxy(proxy_port, config.party("b").port, mutate)
    a_config = _via_proxy(config, "b", proxy_port)
    mesh_a, mesh_b = await asyncio.gather(
        TcpMesh.connect(a_config, "a", ids["a"]), TcpMesh.connect(config, "b", ids["b"])
    )
    a, b = Context(mesh_a), Context(mesh_b)
    link = mesh_b.links["a"]
    try:
        with contextlib.suppress(NetworkError):  # a may see the cut too; b's view is tested
            await send(a)
        with pytest.raises(NetworkError) as info:
            while True:
                await asyncio.wait_for(b.recv("a", "m"), 5)
        assert link.error is info.value
        assert link.transport is None or link.transport.is_closing()
        with pytest.raises(NetworkError):  # the link stays failed for later receives
            await b.recv("a", "m")
        return info.value
    finally:
        await asyncio.gather(mesh_a.close(), mesh_b.close())
        proxy.close()
        await proxy.wait_closed()


async def _send_small(a: Context) -> None:
    for i in range(3):
        await a.send("b", "m", i)
        await asyncio.sleep(0.01)


def _flip(i: int, raw: bytes) -> list[bytes]:
    if i != 1:
        return [raw]
    data = bytearray(raw)
    data[-5] ^= 0x01
    return [bytes(data)]


@pytest.mark.parametrize(
    ("mutate", "error", "message"),
    [
        (_flip, TamperedFrameError, "failed authentication"),
        (lambda i, raw: [raw, raw] if i == 1 else [raw], ReplayedFrameError, "replayed"),
        (lambda i, raw: [] if i == 1 else [raw], DroppedFrameError, "frames lost"),
        (lambda i, raw: [raw[: len(raw) // 2]] if i == 1 else [raw], TruncatedFrameError,
         "truncated"),
    ],
    ids=["tampered", "replayed", "dropped", "truncated"],
)
def test_corrupted_stream_is_detected(run_checked, mutate: Mutation, error: type, message: str):
    err = run_checked(_fault_run(mutate, _send_small))
    assert isinstance(err, error)
    assert err.peer == "a" and message in str(err)


def test_disconnect_in_the_middle_of_a_large_message(run_checked) -> None:
    async def send_big(a: Context) -> None:
        await a.send("b", "m", np.zeros(8 << 20, dtype=np.uint8))
        await asyncio.sleep(0.2)

    cut_after_two_chunks: Mutation = lambda i, raw: None if i == 3 else [raw]  # noqa: E731
    err = run_checked(_fault_run(cut_after_two_chunks, send_big))
    assert isinstance(err, PeerDisconnectedError)
    assert "middle of a message" in str(err) and err.peer == "a"


def test_frame_over_the_limit_is_refused(run_checked) -> None:
    async def main() -> NetworkError:
        config, ids = make_local_cluster(["a", "b"], connect_timeout_s=5)
        small = dataclasses.replace(config, max_frame_bytes=256 * 1024, resume_grace_s=0.0)
        mesh_a, mesh_b = await asyncio.gather(
            TcpMesh.connect(small, "a", ids["a"]), TcpMesh.connect(small, "b", ids["b"])
        )
        try:
            await mesh_a.send("b", "m", np.zeros(1 << 20, dtype=np.uint8))  # 1 MiB chunks
            with pytest.raises(FrameTooLargeError) as info:
                await asyncio.wait_for(mesh_b.recv("a", "m"), 5)
            return info.value
        finally:
            await asyncio.gather(mesh_a.close(), mesh_b.close())

    err = run_checked(main())
    assert err.peer == "a" and "exceeds the limit of 262144" in str(err)


def test_wrong_identity_key_is_rejected_on_both_sides(run_checked) -> None:
    async def main() -> list[BaseException | TcpMesh]:
        config, ids = make_local_cluster(["a", "b"], connect_timeout_s=1.5)
        impostor = IdentityKey.generate("a")  # claims to be a, with a key nobody pinned
        return await asyncio.gather(
            TcpMesh.connect(config, "a", impostor),
            TcpMesh.connect(config, "b", ids["b"]),
            return_exceptions=True,
        )

    err_a, err_b = run_checked(main())
    # b drops the unproven connection and keeps waiting for the real a (not aborted by it)
    assert isinstance(err_b, ConnectTimeoutError) and err_b.peer == "a"
    assert "does not match the key pinned" in str(err_b)
    assert isinstance(err_a, ConnectTimeoutError) and err_a.peer == "b"
    assert "rejected us" in str(err_a)


def test_unknown_party_cannot_join(run_checked) -> None:
    async def main() -> list[BaseException | TcpMesh]:
        config, ids = make_local_cluster(["a", "b"], connect_timeout_s=2)
        other, other_ids = make_local_cluster(["mallory", "a"], connect_timeout_s=2)
        # mallory dials b's address, claiming a party id the cluster does not have
        rogue = dataclasses.replace(
            other, cluster_id=config.cluster_id,
            parties=[other.party("mallory"),
                     dataclasses.replace(other.party("a"), port=config.party("b").port)],
        )
        return await asyncio.gather(
            TcpMesh.connect(config, "b", ids["b"]),
            TcpMesh.connect(rogue, "mallory", other_ids["mallory"]),
            return_exceptions=True,
        )

    err_b, err_mallory = run_checked(main())
    assert isinstance(err_b, ConnectTimeoutError) and "connection(s) rejected" in str(err_b)
    assert "claiming mallory" in str(err_b)
    assert isinstance(err_mallory, NetworkError)


def test_peer_that_never_connects_times_out_with_a_clear_error(run_checked) -> None:
    async def main() -> BaseException:
        config, ids = make_local_cluster(["a", "b", "c"], connect_timeout_s=1)
        with pytest.raises(ConnectTimeoutError) as info:
            await asyncio.gather(TcpMesh.connect(config, "a", ids["a"]),
                                 TcpMesh.connect(config, "b", ids["b"]))
        await asyncio.sleep(0.3)  # the other mesh's own failure closes it
        return info.value

    err = run_checked(main())
    assert "c" in str(err.peer) and ("never connected" in str(err) or "attempts" in str(err))


def test_peer_that_closes_fails_pending_receives(run_checked) -> None:
    async def main() -> None:
        config, ids = make_local_cluster(["a", "b"], connect_timeout_s=5)
        mesh_a, mesh_b = await asyncio.gather(
            TcpMesh.connect(config, "a", ids["a"]), TcpMesh.connect(config, "b", ids["b"])
        )
        await mesh_a.send("b", "m", "last words")
        waiting = asyncio.ensure_future(mesh_b.recv("a", "never-sent"))
        await mesh_a.close()
        assert await mesh_b.recv("a", "m") == "last words"  # delivered before the close
        with pytest.raises(PeerDisconnectedError, match="peer closed the link"):
            await asyncio.wait_for(waiting, 5)
        await mesh_b.close()

    run_checked(main())
