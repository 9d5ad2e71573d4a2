"""Local clusters on loopback: generated keys, free ports and a config file.

Used by ``meshmpc launch``, the demo, the tests and the benchmarks to stand up
N parties on 127.0.0.1 with the real encrypted mesh.
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

from meshmpc.net.config import ClusterConfig, PartyConfig, WanProfile
from meshmpc.net.keys import IdentityKey


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Ports free right now, taken below the kernel's ephemeral range where it leaves room:
    a port the OS hands out for "bind to 0" is also the kind it picks as the source port
    of outgoing connections, so between this call and the party binding it another
    process's connection could take it (seen as flaky start-ups under load). Ports are
    held open together while chosen, so they differ."""
    sockets: list[socket.socket] = []
    low = _ephemeral_low()
    try:
        for _ in range(200):
            if len(sockets) == count or low - PORT_FLOOR < 1000:
                break
            port = PORT_FLOOR + secrets.randbelow(low - PORT_FLOOR)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((host, port))
            except OSError:
                s.close()
                continue
            sockets.append(s)
        while len(sockets) < count:  # no room below the range: let the OS choose
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


PORT_FLOOR = 20000
"""Lowest port :func:`free_ports` picks (above the usual service ports)."""


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral (outgoing source port) range."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


LOCAL_CONNECT_TIMEOUT_S = 20.0
LOCAL_RESUME_GRACE_S = 5.0
"""Every party of a local cluster runs on this machine over loopback: a dropped link
means a process died, not the network, so its peers resume for 5 s (not a WAN's 30 s)
before they fail and name it."""
LOCAL_KEEPALIVE_S = 0.0
"""Local clusters send no keepalive: loopback cannot half-open (a dead process resets its
sockets), and a local party busy in a long computation must not lose its links."""


def local_connect_timeout() -> float:
    """How long a local party waits for its peers to start: ``MESHMPC_CONNECT_TIMEOUT_S``
    if set (benchmarks on a loaded machine set it higher: processes may take longer than
    20 s to import and bind), else 20 s."""
    text = os.environ.get("MESHMPC_CONNECT_TIMEOUT_S")
    try:
        value = float(text) if text else LOCAL_CONNECT_TIMEOUT_S
    except ValueError:
        value = LOCAL_CONNECT_TIMEOUT_S
    return value if value > 0 else LOCAL_CONNECT_TIMEOUT_S


def make_local_cluster(
    parties: list[str],
    directory: Path | None = None,
    cluster_id: str = "local",
    connect_timeout_s: float | None = None,
    wan: WanProfile | None = None,
    host: str = "127.0.0.1",
    suite: str = "default",
    resume_grace_s: float = LOCAL_RESUME_GRACE_S,
) -> tuple[ClusterConfig, dict[str, IdentityKey]]:
    """Keys and a config for ``parties`` on loopback; written to ``directory`` if given.

    With a directory, each party's key is saved as ``<party>.key`` (mode 0600)
    and the config as ``cluster.toml`` referencing them. ``resume_grace_s = 0``
    turns resumption off (benchmarks measure what it costs).
    """
    identities = {p: IdentityKey.generate(p, suite) for p in parties}
    ports = free_ports(len(parties), host)
    entries = []
    for party, port in zip(parties, ports, strict=True):
        key_file = None
        if directory is not None:
            identities[party].save(directory)
            key_file = Path(f"{party}.key")
        entries.append(
            PartyConfig(party, host, port, identities[party].public_key, key_file)
        )
    if connect_timeout_s is None:
        connect_timeout_s = local_connect_timeout()
    config = ClusterConfig(cluster_id, entries, connect_timeout_s=connect_timeout_s, wan=wan,
                           suite=suite, resume_grace_s=resume_grace_s,
                           keepalive_s=LOCAL_KEEPALIVE_S)
    if directory is not None:
        path = directory / "cluster.toml"
        path.write_text(config.to_toml())
        config = ClusterConfig(
            cluster_id, entries, connect_timeout_s=connect_timeout_s, wan=wan, path=path,
            suite=suite, resume_grace_s=resume_grace_s, keepalive_s=LOCAL_KEEPALIVE_S,
        )
    return config, identities
