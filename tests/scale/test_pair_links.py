"""Worker links: only offered keys get in, and one inbound port relays them (no Ray needed)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from meshmpc.net.errors import ConfigMismatchError, NetworkError
from meshmpc.net.eventloop import run as run_loop
from meshmpc.net.local import free_ports, make_local_cluster
from meshmpc.net.relay import InboundRelay
from meshmpc.net.tcp import TcpMesh
from meshmpc.scale.coordinator import _check_offers, _Round, split_groups
from meshmpc.scale.options import ScaleConfigError, ScaleError, parse_ray_options
from meshmpc.scale.pair import Offer, fresh_worker_key, pair_config

ORDER = ["bank", "gov"]


def _offers(attempt: int = 0, gov_port: int | None = None) -> tuple[dict[str, Any], ...]:
    keys = {p: fresh_worker_key(p) for p in ORDER}
    ports = free_ports(2)
    offers = {p: Offer(p, 0, attempt, (0, 1), keys[p].public_b64, "127.0.0.1", ports[i])
              for i, p in enumerate(ORDER)}
    return keys, offers, ports


async def _connect(config: Any, party: str, key: Any) -> TcpMesh:
    return await TcpMesh.connect(config, party, key, on_waiting=None)


async def _pair_talks(bank: TcpMesh, gov: TcpMesh) -> None:
    await bank.send("gov", "t", b"hello")
    assert await gov.recv("bank", "t") == b"hello"
    await gov.send("bank", "t", b"back")
    assert await bank.recv("gov", "t") == b"back"


def test_a_forged_worker_key_is_refused() -> None:
    """A dialer holding any key but the one bank's coordinator offered cannot join."""
    keys, offers, _ = _offers()
    gov_config = pair_config("job", ORDER, offers["gov"], offers["bank"], connect_timeout_s=8)
    forged = fresh_worker_key("bank")  # right party name and fingerprint, wrong key
    forged_offer = Offer("bank", 0, 0, (0, 1), forged.public_b64, "127.0.0.1",
                         offers["bank"].port)

    async def run() -> None:
        gov = asyncio.create_task(_connect(gov_config, "gov", keys["gov"]))
        forger_config = pair_config("job", ORDER, forged_offer, offers["gov"],
                                    connect_timeout_s=1.5)
        with pytest.raises(NetworkError):
            await _connect(forger_config, "bank", forged)
        bank_config = pair_config("job", ORDER, offers["bank"], offers["gov"],
                                  connect_timeout_s=8)
        bank = await _connect(bank_config, "bank", keys["bank"])
        gov_mesh = await gov
        assert gov_mesh.rejected >= 1  # the forger's connections, refused by gov's worker
        assert all("does not match the key pinned" in r for r in gov_mesh.rejections)
        await _pair_talks(bank, gov_mesh)
        await asyncio.gather(bank.close(), gov_mesh.close())

    run_loop(run())


def test_another_attempt_key_does_not_fit() -> None:
    """An offer is for one attempt: the same key under another attempt's config fails."""
    keys, offers, _ = _offers(attempt=1)
    stale = Offer("bank", 0, 0, offers["bank"].items, offers["bank"].public_key,
                  "127.0.0.1", offers["bank"].port)
    gov_config = pair_config("job", ORDER, offers["gov"], offers["bank"], connect_timeout_s=8)
    stale_config = pair_config("job", ORDER, stale, offers["gov"], connect_timeout_s=1.5)
    assert stale_config.fingerprint != gov_config.fingerprint

    async def run() -> None:
        gov = asyncio.create_task(_connect(gov_config, "gov", keys["gov"]))
        with pytest.raises(ConfigMismatchError):
            await _connect(stale_config, "bank", keys["bank"])
        gov.cancel()
        with pytest.raises(BaseException):  # noqa: B017 - cancelled or timed out: either way
            await gov

    run_loop(run())


def test_worker_link_through_the_one_inbound_port() -> None:
    """gov's workers are reached only through gov's coordinator port, which relays by
    fingerprint; unknown fingerprints are dropped there, and the coordinators' own link
    keeps working."""
    config, identities = make_local_cluster(ORDER)

    async def run() -> None:
        coord = await asyncio.gather(*(_connect(config, p, identities[p]) for p in ORDER))
        gov_coord = coord[1]
        public = (config.party("gov").host, config.party("gov").port)
        relay = InboundRelay(gov_coord, public)
        gov_coord.inbound_relay = relay
        keys, offers, ports = _offers()
        internal = (offers["gov"].host, offers["gov"].port)
        advertised = Offer("gov", 0, 0, offers["gov"].items, offers["gov"].public_key, *public)
        gov_config = pair_config("job", ORDER, advertised, offers["bank"], bind=internal,
                                 connect_timeout_s=8)
        bank_config = pair_config("job", ORDER, offers["bank"], advertised, connect_timeout_s=8)
        relay.add(gov_config.fingerprint, internal)
        other = pair_config("other-job", ORDER, offers["bank"], advertised, connect_timeout_s=1)
        with pytest.raises(NetworkError):  # no route for that pair: dropped at the port
            await _connect(other, "bank", keys["bank"])
        assert relay.dropped >= 1
        dropped = relay.dropped
        reader, writer = await asyncio.open_connection(*public)  # not meshmpc at all
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, nothing answered
        writer.close()
        assert relay.dropped == dropped + 1 and not relay.waiting
        pair = await asyncio.gather(_connect(bank_config, "bank", keys["bank"]),
                                    _connect(gov_config, "gov", keys["gov"]))
        await _pair_talks(*pair)
        big = bytes(range(256)) * 40000  # 10 MB through the relay
        await pair[0].send("gov", "big", big)
        assert await pair[1].recv("bank", "big") == big
        assert relay.relayed >= 1
        await _pair_talks(*coord)
        # the coordinators' own link drops: bank redials gov's port, the relay hands the
        # connection (its HELLO has the coordinators' fingerprint) to gov's mesh: resumed
        transport = coord[0].links["gov"].transport
        assert transport is not None
        transport.abort()
        await asyncio.sleep(0.05)
        await _pair_talks(*coord)
        assert coord[0].links["gov"].transport is not transport
        assert relay.handed == 1
        await asyncio.gather(*(m.close() for m in (*pair, *coord)))

    run_loop(run())


def test_offers_must_match_our_groups_and_attempt() -> None:
    rnd = _Round(1, split_groups(list(range(10)), 3))
    assert rnd.groups == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    good = [Offer("gov", k, 1, tuple(g), fresh_worker_key("gov").public_b64, "h", 1).to_wire()
            for k, g in enumerate(rnd.groups)]
    assert [o.items for o in _check_offers(good, "gov", rnd)] == [(0, 1, 2, 3), (4, 5, 6),
                                                                 (7, 8, 9)]
    stale = [dict(o, attempt=0) for o in good]
    with pytest.raises(ScaleError, match="attempt 0"):
        _check_offers(stale, "gov", rnd)
    wrong_items = [dict(good[0], items=[0, 1, 2]), *good[1:]]
    with pytest.raises(ScaleError, match="items 0-2"):
        _check_offers(wrong_items, "gov", rnd)
    with pytest.raises(ScaleError, match="malformed"):
        _check_offers([dict(good[0], public_key="!!"), *good[1:]], "gov", rnd)


@pytest.mark.parametrize(("value", "message"), [
    ({"workers": 0}, "workers"), ({"address": "nowhere"}, "address"),
    ({"worker": 2}, "worker"), ({"cpus": -1}, "cpus"), ("yes", "expected"),
])
def test_bad_ray_settings_name_the_field(value: Any, message: str) -> None:
    with pytest.raises(ScaleConfigError, match=message):
        parse_ray_options(value)
    assert parse_ray_options(None) is None
    assert parse_ray_options({"address": "10.0.0.5:6379", "workers": 4}).workers == 4
