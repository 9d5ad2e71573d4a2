"""``--log-level``: the mesh's structured events on stderr with time and level, no secrets."""

from __future__ import annotations

import asyncio
import base64
import logging
import re

import pytest

from meshmpc.cli import _split_log_level, configure_logging
from meshmpc.net.local import make_local_cluster
from meshmpc.net.tcp import TcpMesh


@pytest.fixture
def restore_logging():  # noqa: ANN201
    logger = logging.getLogger("meshmpc")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers, logger.level, logger.propagate = saved[0], saved[1], saved[2]


def test_log_level_is_taken_from_anywhere_on_the_line() -> None:
    assert _split_log_level(["psi", "--log-level", "info", "--party", "bank"]) == (
        ["psi", "--party", "bank"], "info")
    assert _split_log_level(["pir", "serve", "--log-level=debug"]) == (["pir", "serve"], "debug")


def test_info_shows_listen_and_link_events_without_key_material(
        capsys: pytest.CaptureFixture[str], restore_logging: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESHMPC_LOG_LEVEL", raising=False)
    configure_logging("info")
    config, identities = make_local_cluster(["bank", "gov"], connect_timeout_s=10)

    async def connect() -> None:
        meshes = await asyncio.gather(*(TcpMesh.connect(config, p, identities[p])
                                        for p in ["bank", "gov"]))
        await asyncio.gather(*(m.close() for m in meshes))

    asyncio.run(connect())
    err = capsys.readouterr().err
    line = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ INFO meshmpc\.net "
    assert re.search(line + r"mesh\.listen party=bank bind=", err, re.M), err
    assert re.search(line + r"link\.up party=(bank|gov) peer=(gov|bank)", err, re.M), err
    for party in ("bank", "gov"):
        seed = bytes(identities[party].signing_key)
        assert base64.b64encode(seed).decode() not in err and seed.hex() not in err


def test_a_bad_level_is_one_line(capsys: pytest.CaptureFixture[str],
                                 restore_logging: None) -> None:
    with pytest.raises(SystemExit) as stop:
        configure_logging("loud")
    assert stop.value.code == 2 and "use debug, info, warning or error" in capsys.readouterr().err
