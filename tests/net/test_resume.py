"""Links that survive interruptions: resume after a cut, re-fetch after tampering.

A relay sits on the address party "a" dials for party "b". It can cut every
connection at once (both sockets reset), refuse new ones for a while (the
network is down), and mutate a data record in the a->b direction of chosen
connections. The properties checked: what arrives equals what was sent (no
loss, no duplicate, same order) in both directions; a record that fails
authentication is fetched again at most three times; a link not restored
within the grace period, or a restarted peer, fails cleanly naming the link;
the resend buffer stays within its bound; a recorded connection replayed by a
third party resumes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from cryptography.exceptions import InvalidTag

from meshmpc.errors import stage_of
from meshmpc.net import framing
from meshmpc.net.config import ClusterConfig
from meshmpc.net.errors import (
    LinkBrokenError,
    NetworkError,
    PeerDisconnectedError,
    SessionRefused,
)
from meshmpc.net.keys import IdentityKey
from meshmpc.net.local import free_ports, make_local_cluster
from meshmpc.net.secure import Handshake
from meshmpc.net.session import CHUNK_SIZE, MAX_REFETCH, SPARE_CHUNKS
from meshmpc.net.tcp import TcpMesh

# (connection number from 1, index of the data record on it, its bytes) -> bytes to forward,
# or None to cut every connection right there
Mutation = Callable[[int, int, bytes], bytes | None]


class Relay:
    """A controllable man in the middle on loopback (same event loop as the meshes)."""

    def __init__(self, target_port: int, mutate: Mutation | None = None) -> None:
        self.target_port = target_port
        self.port = free_ports(1)[0]
        self.mutate = mutate
        self.blocked = False
        self.stalled: set[int] = set()  # connections black-holed: bytes vanish, none closed
        self.connections = 0
        self.recorded: list[bytearray] = []  # what the dialer sent, per connection
        self._open: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> Relay:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        self.cut()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def stall(self) -> None:
        """Black-hole every open connection in both directions; neither end is closed."""
        self.stalled.update(range(1, self.connections + 1))

    def cut(self) -> None:
        """Reset every proxied connection in both directions."""
        for writer in self._open:
            writer.transport.abort()
        self._open.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.blocked:
            writer.transport.abort()
            return
        try:
            t_reader, t_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:  # the target is not listening (yet, or restarting): not counted
            writer.transport.abort()
            return
        self.connections += 1
        number = self.connections
        self.recorded.append(bytearray())
        self._open += [writer, t_writer]
        await asyncio.gather(self._up(reader, t_writer, number),
                             self._down(t_reader, writer, number), return_exceptions=True)

    async def _up(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                  number: int) -> None:
        records = framing.RecordReader(max_frame=1 << 30)
        index = 0
        try:
            while data := await reader.read(1 << 16):
                if number in self.stalled:
                    continue
                self.recorded[number - 1] += data
                for header, counter, rtype, body in records.feed(data):
                    raw: bytes | None = header + body
                    data_record = rtype in (framing.BATCH, framing.CHUNK) and counter >= 1
                    if data_record and self.mutate is not None:
                        raw = self.mutate(number, index, header + body)
                    index += data_record
                    if raw is None:
                        self.cut()
                        return
                    writer.write(raw)
                await writer.drain()
        except (ConnectionError, RuntimeError):
            pass
        finally:
            if number not in self.stalled:  # a black hole passes on no close either
                writer.close()

    async def _down(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    number: int) -> None:
        try:
            while data := await reader.read(1 << 16):
                if number in self.stalled:
                    continue
                writer.write(data)
                await writer.drain()
        except (ConnectionError, RuntimeError):
            pass
        finally:
            if number not in self.stalled:
                writer.close()


def _flip(raw: bytes) -> bytes:
    data = bytearray(raw)
    data[-5] ^= 0x01
    return bytes(data)


def _config(**changes: Any) -> tuple[ClusterConfig, dict[str, IdentityKey]]:
    config, ids = make_local_cluster(["a", "b"], connect_timeout_s=5)
    return dataclasses.replace(config, **{"resume_grace_s": 5.0, **changes}), ids


def _via(config: ClusterConfig, port: int) -> ClusterConfig:
    parties = [dataclasses.replace(p, port=port) if p.id == "b" else p for p in config.parties]
    return dataclasses.replace(config, parties=parties)


async def _pair(mutate: Mutation | None = None, **changes: Any
                ) -> tuple[TcpMesh, TcpMesh, Relay, ClusterConfig, dict[str, IdentityKey]]:
    config, ids = _config(**changes)
    relay = await Relay(config.party("b").port, mutate).start()
    a, b = await asyncio.gather(TcpMesh.connect(_via(config, relay.port), "a", ids["a"]),
                                TcpMesh.connect(config, "b", ids["b"]))
    return a, b, relay, config, ids


async def _exchange(sender: TcpMesh, receiver: TcpMesh, big: np.ndarray, small: int) -> None:
    """``sender`` sends ``big`` then ``small`` numbered messages; ``receiver`` checks every one
    arrives once, intact and in order."""
    async def send() -> None:
        await sender.send(receiver.party, "big", big)
        for i in range(small):
            await sender.send(receiver.party, "n", i)
            if i % 50 == 0:
                await asyncio.sleep(0.005)

    async def receive() -> None:
        got = await receiver.recv(sender.party, "big")
        assert np.array_equal(got, big)
        assert [await receiver.recv(sender.party, "n") for _ in range(small)] == list(range(small))

    await asyncio.gather(send(), receive())


def _nothing_left(*meshes: TcpMesh) -> None:
    for mesh in meshes:
        assert mesh.mailbox.pending() == {}, f"{mesh.party} got extra messages (duplicates)"


def test_cut_in_the_middle_of_a_large_message_is_resumed(run_checked) -> None:
    async def main() -> None:
        def cut_once(number: int, index: int, raw: bytes) -> bytes | None:
            if number == 1 and index == 4:
                relay.blocked = True  # down for a moment: a retries with back-off
                return None
            return raw

        a, b, relay, _, _ = await _pair(cut_once)

        async def restore() -> None:
            while not relay.blocked:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.3)
            relay.blocked = False

        rng = np.random.default_rng(7)
        big_ab = rng.integers(0, 2**63, 1 << 20, dtype=np.int64)  # 8 MiB: 8 chunks
        big_ba = rng.integers(0, 2**63, 3 << 17, dtype=np.int64)
        await asyncio.gather(_exchange(a, b, big_ab, 300), _exchange(b, a, big_ba, 300),
                             restore())
        assert relay.connections >= 2, "the link was never cut"
        assert a.peer_sessions["b"].resumes >= 1 and b.peer_sessions["a"].resumes >= 1
        await asyncio.gather(a.close(), b.close())
        _nothing_left(a, b)
        await relay.stop()

    run_checked(main())


def test_tampered_record_is_fetched_again(run_checked) -> None:
    async def main() -> None:
        def flip_once(number: int, index: int, raw: bytes) -> bytes | None:
            return _flip(raw) if number == 1 and index == 2 else raw

        a, b, relay, _, _ = await _pair(flip_once)
        big = np.arange(3 << 18, dtype=np.int64)
        await asyncio.gather(_exchange(a, b, big, 200), _exchange(b, a, big[:1000], 50))
        assert relay.connections == 2  # one fresh handshake, one re-fetch
        await asyncio.gather(a.close(), b.close())
        _nothing_left(a, b)
        await relay.stop()

    run_checked(main())


def test_record_failing_on_every_connection_breaks_the_link(run_checked) -> None:
    async def main() -> tuple[BaseException, BaseException, int]:
        def same_record(number: int, index: int, raw: bytes) -> bytes:
            # record 1 of the session: index 1 at first, index 0 of every resumed connection
            return _flip(raw) if index == (1 if number == 1 else 0) else raw

        a, b, relay, _, _ = await _pair(same_record)
        for i in range(3):
            with contextlib.suppress(NetworkError):  # a learns of the failure meanwhile
                await a.send("b", "m", i)
            await asyncio.sleep(0.05)  # one record each
        assert await b.recv("a", "m") == 0
        with pytest.raises(LinkBrokenError) as at_b:
            await asyncio.wait_for(b.recv("a", "m"), 10)
        with pytest.raises(NetworkError) as at_a:
            await asyncio.wait_for(a.recv("b", "never"), 10)
        await asyncio.gather(a.close(), b.close())
        await relay.stop()
        return at_b.value, at_a.value, relay.connections

    at_b, at_a, connections = run_checked(main())
    assert connections == 1 + MAX_REFETCH  # then the ABORT tells a why
    assert at_b.peer == "a" and "failed authentication" in str(at_b)
    assert f"fetched {MAX_REFETCH} times" in str(at_b)
    assert at_a.peer == "b" and "failed authentication" in str(at_a)


def test_cut_not_restored_fails_cleanly_after_the_grace_period(run_checked) -> None:
    async def main() -> tuple[tuple[BaseException, float], tuple[BaseException, float]]:
        a, b, relay, _, _ = await _pair(resume_grace_s=0.5)
        loop = asyncio.get_running_loop()
        await a.send("b", "m", 1)
        assert await b.recv("a", "m") == 1
        relay.blocked = True
        relay.cut()
        cut_at = loop.time()

        async def failure(mesh: TcpMesh, peer: str) -> tuple[BaseException, float]:
            with pytest.raises(LinkBrokenError) as info:
                await asyncio.wait_for(mesh.recv(peer, "m"), 10)
            return info.value, loop.time() - cut_at

        outcome = await asyncio.gather(failure(a, "b"), failure(b, "a"))
        with pytest.raises(LinkBrokenError):
            await a.send("b", "m", 2)  # sending fails too, at once
        await asyncio.gather(a.close(), b.close())
        await relay.stop()
        return outcome

    for (error, seconds), peer in zip(run_checked(main()), "ba", strict=True):
        assert error.peer == peer and "not restored within the 0.5 s grace period" in str(error)
        assert stage_of(error) == f"waiting for 'm' from {peer}"
        assert 0.45 <= seconds < 3.0


def _crash(mesh: TcpMesh) -> None:
    """What a killed process leaves: reset sockets, no CLOSE, no state (nothing resumes)."""
    crash = NetworkError(None, "crashed")
    for link in list(mesh.connections):
        link.abandon(crash, tell=False)
    for session in mesh.peer_sessions.values():
        session.fail(crash)


@pytest.mark.parametrize("restarted", ["a", "b"], ids=["dialer", "listener"])
def test_restarted_peer_cannot_resume(run_checked, restarted: str) -> None:
    async def main() -> tuple[BaseException, BaseException]:
        a, b, relay, config, ids = await _pair()
        await a.send("b", "m", 1)
        assert await b.recv("a", "m") == 1
        crashed = {"a": a, "b": b}[restarted]
        _crash(crashed)
        await crashed.close()
        view = _via(config, relay.port) if restarted == "a" else config
        new = TcpMesh.connect(view, restarted, ids[restarted])
        survivor = b if restarted == "a" else a
        other = "a" if restarted == "b" else "b"
        with pytest.raises(SessionRefused) as at_new:
            await asyncio.wait_for(new, 10)
        with pytest.raises(SessionRefused) as at_survivor:
            await asyncio.wait_for(survivor.recv(restarted, "m"), 10)
        assert at_survivor.value.peer == restarted and at_new.value.peer == other
        await survivor.close()
        await relay.stop()
        return at_new.value, at_survivor.value

    at_new, at_survivor = run_checked(main())
    text = str(at_new) + str(at_survivor)
    assert "restarted" in text and "run the job again" in text


def test_resend_buffer_stays_within_its_bound(run_checked) -> None:
    bound = 2 * CHUNK_SIZE

    async def main() -> None:
        a, b, relay, _, _ = await _pair(resend_buffer_bytes=bound)
        session = a.peer_sessions["b"]
        big = np.random.default_rng(3).integers(0, 255, 24 << 20, dtype=np.uint8)
        await _exchange(a, b, big, 10)  # 24 MiB through a 2 MiB buffer
        assert session.peak_unacked_bytes <= bound + CHUNK_SIZE
        assert 0 < len(session._spare) <= SPARE_CHUNKS  # acknowledged chunk buffers reused
        relay.blocked = True
        relay.cut()
        sending = asyncio.ensure_future(a.send("b", "big2", big))
        await asyncio.sleep(0.4)
        assert not sending.done(), "the sender went on although nothing was acknowledged"
        assert session.unacked_bytes <= bound + CHUNK_SIZE
        relay.blocked = False
        await asyncio.wait_for(sending, 20)
        assert np.array_equal(await b.recv("a", "big2"), big)
        assert session.peak_unacked_bytes <= bound + CHUNK_SIZE
        await asyncio.gather(a.close(), b.close())
        await relay.stop()

    run_checked(main())


def test_replayed_resume_connection_resumes_nothing(run_checked) -> None:
    async def main() -> None:
        a, b, relay, config, _ = await _pair()
        await a.send("b", "m", 1)
        assert await b.recv("a", "m") == 1
        relay.cut()  # a resumes on connection 2, which the relay records
        await a.send("b", "m", 2)
        assert await b.recv("a", "m") == 2
        replay = bytes(relay.recorded[1])
        rejected = b.rejected
        reader, writer = await asyncio.open_connection("127.0.0.1", config.party("b").port)
        writer.write(replay)  # a third party replays a's resume connection to b
        await reader.read()  # b drops it
        writer.close()
        assert b.rejected == rejected + 1
        await a.send("b", "m", 3)  # the real session is untouched
        assert await b.recv("a", "m") == 3
        await asyncio.gather(a.close(), b.close())
        _nothing_left(a, b)
        await relay.stop()

    run_checked(main())


def test_sealed_records_are_recovered_by_their_sender_only() -> None:
    config, ids = _config()
    sides = []
    for dialer in (True, False):
        hs = Handshake(ids["a" if dialer else "b"], config.fingerprint, dialer)
        sides.append(hs)
    a, b = sides
    a.read_hello(b.own_hello)
    b.read_hello(a.own_hello)
    a.verify_peer(b.auth_message(), ids["b"].public_key)
    b.verify_peer(a.auth_message(), ids["a"].public_key)
    at_a, at_b = a.session("b"), b.session("a")
    batch = at_a.seal(framing.BATCH, b"small messages")
    chunk = at_a.seal_parts(framing.CHUNK, memoryview(bytes(range(256)) * 64))
    assert at_a.recover((batch,)) == b"small messages"
    assert at_a.recover(chunk) == bytes(range(256)) * 64
    with pytest.raises(InvalidTag):  # b's send key is not the one that sealed them
        at_b.recover((batch,))


def test_an_array_reused_after_send_arrives_as_it_was_sent(run_checked) -> None:
    async def main() -> None:
        a, b, relay, _, _ = await _pair()
        relay.stall()  # nothing reaches b or is acknowledged: a keeps every record
        big = np.random.default_rng(5).integers(0, 2**63, 1 << 19, dtype=np.int64)  # 4 MiB
        sent = big.copy()
        await a.send("b", "big", big)
        session = a.peer_sessions["b"]
        chunks = [kept for kept in session.unacked if kept[1] == framing.CHUNK]
        assert len(chunks) == 4
        assert all(cipher is not None for *_, cipher in chunks), "the caller's memory was kept"
        big[:] = 0  # the caller reuses its buffer once send has returned
        relay.cut()  # resumed: the records are decrypted and sealed again, new keys
        assert np.array_equal(await asyncio.wait_for(b.recv("a", "big"), 10), sent)
        assert session.resumes == 1
        await asyncio.gather(a.close(), b.close())
        _nothing_left(a, b)
        await relay.stop()

    run_checked(main())


def test_half_open_link_is_noticed_by_keepalive_and_resumed(
        run_checked, caplog: pytest.LogCaptureFixture) -> None:
    every, timeout = 0.1, 0.5

    async def main() -> float:
        a, b, relay, _, _ = await _pair(keepalive_s=every, keepalive_timeout_s=timeout)
        loop = asyncio.get_running_loop()
        await a.send("b", "m", 0)
        assert await b.recv("a", "m") == 0
        relay.blocked = True  # no new connection either, until the network is back
        relay.stall()
        stalled_at = loop.time()
        for i in range(1, 4):  # sent into the black hole
            await a.send("b", "m", i)
            await b.send("a", "r", i)
        sa, sb = a.peer_sessions["b"], b.peer_sessions["a"]
        while sa.link is not None or sb.link is not None:
            await asyncio.sleep(0.01)
        noticed = loop.time() - stalled_at
        relay.blocked = False  # traffic flows again: a redials and both resend
        assert [await asyncio.wait_for(b.recv("a", "m"), 10) for _ in range(3)] == [1, 2, 3]
        assert [await a.recv("b", "r") for _ in range(3)] == [1, 2, 3]
        assert sa.resumes == 1 and sb.resumes == 1
        await asyncio.gather(a.close(), b.close())
        _nothing_left(a, b)
        await relay.stop()
        return noticed

    noticed = run_checked(main())
    assert timeout <= noticed < timeout + 3 * every + 0.5
    lost = [r.getMessage() for r in caplog.records if "link.interrupted" in r.getMessage()]
    assert len(lost) == 2 and all("half-open" in line for line in lost), lost  # both sides


def test_without_keepalive_a_half_open_link_goes_unnoticed(run_checked) -> None:
    async def main() -> None:  # the control of the test above: keepalive_s = 0
        a, b, relay, _, _ = await _pair(keepalive_s=0.0, keepalive_timeout_s=0.5)
        relay.stall()
        await a.send("b", "m", 1)
        await asyncio.sleep(1.0)
        assert a.peer_sessions["b"].link is not None and b.peer_sessions["a"].link is not None
        relay.cut()
        assert await asyncio.wait_for(b.recv("a", "m"), 10) == 1
        await asyncio.gather(a.close(), b.close())
        await relay.stop()

    run_checked(main())


def test_keepalive_keeps_an_idle_healthy_link(run_checked) -> None:
    async def main() -> None:
        a, b, relay, _, _ = await _pair(keepalive_s=0.05, keepalive_timeout_s=0.25)
        await asyncio.sleep(0.8)  # idle: only PING and PONG records
        links = (a.links["b"], b.links["a"])
        assert sum(link.keepalive.pings for link in links) >= 4
        assert relay.connections == 1 and a.peer_sessions["b"].resumes == 0
        await a.send("b", "m", 1)
        assert await b.recv("a", "m") == 1
        await asyncio.gather(a.close(), b.close())
        await relay.stop()

    run_checked(main())


@pytest.mark.parametrize("stopping", ["a", "b"], ids=["dialer", "listener"])
def test_abort_while_the_link_is_down_is_delivered_on_resume(run_checked, stopping: str) -> None:
    async def main() -> tuple[BaseException, float]:
        a, b, relay, _, _ = await _pair()  # grace 5 s
        loop = asyncio.get_running_loop()
        await a.send("b", "m", 1)
        assert await b.recv("a", "m") == 1
        relay.blocked = True
        relay.cut()
        meshes = {"a": a, "b": b}
        other = "b" if stopping == "a" else "a"
        while a.peer_sessions["b"].link is not None or b.peer_sessions["a"].link is not None:
            await asyncio.sleep(0.01)
        closing = asyncio.ensure_future(meshes[stopping].close("step 'score' failed: boom"))
        await asyncio.sleep(0.3)
        assert not closing.done(), "the ABORT was dropped instead of held"
        started = loop.time()
        relay.blocked = False
        with pytest.raises(PeerDisconnectedError) as info:
            await asyncio.wait_for(meshes[other].recv(stopping, "m"), 10)
        told_after = loop.time() - started
        await asyncio.wait_for(closing, 5)
        await meshes[other].close()
        await relay.stop()
        return info.value, told_after

    error, told_after = run_checked(main())
    assert "boom" in str(error) and error.peer == stopping
    assert told_after < 2.5  # on resume, not after the 5 s grace period


def test_first_connection_lost_before_the_session_answer_is_resumed(run_checked,
                                                                     monkeypatch) -> None:
    """The dialer's first connection dies after the listener opened the session but before
    its answer arrived (a handshake deadline under load): the dialer offers the same session
    id again and the listener resumes it instead of refusing a 'restarted' peer."""
    from meshmpc.net import link as link_module

    real = link_module.Link._on_session
    dropped: list[bool] = []

    def lose_first_answer(self: Any, body: bytes) -> None:
        if self.dialer and not dropped:
            dropped.append(True)
            raise PeerDisconnectedError(self.peer, "connection lost before the session answer")
        real(self, body)

    monkeypatch.setattr(link_module.Link, "_on_session", lose_first_answer)

    async def main() -> None:
        a, b, relay, _, _ = await _pair()
        assert dropped, "the first answer was never lost"
        await asyncio.gather(_exchange(a, b, np.arange(1000, dtype=np.int64), 20),
                             _exchange(b, a, np.arange(500, dtype=np.int64), 20))
        assert a.peer_sessions["b"].id == b.peer_sessions["a"].id
        await asyncio.gather(a.close(), b.close())
        _nothing_left(a, b)
        await relay.stop()

    run_checked(main())
