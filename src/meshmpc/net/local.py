"""Local clusters on loopback: generated keys, free ports and a config file.

Used by ``meshmpc launch``, the demo, the tests and the benchmarks to stand up
N parties on 127.0.0.1 with the real encrypted mesh.
"""

from __future__ import annotations

import socket
from pathlib import Path

from meshmpc.net.config import ClusterConfig, PartyConfig, WanProfile
from meshmpc.net.keys import IdentityKey


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Ports the OS reports free right now (held open together so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def make_local_cluster(
    parties: list[str],
    directory: Path | None = None,
    cluster_id: str = "local",
    connect_timeout_s: float = 20.0,
    wan: WanProfile | None = None,
    host: str = "127.0.0.1",
    suite: str = "default",
) -> tuple[ClusterConfig, dict[str, IdentityKey]]:
    """Keys and a config for ``parties`` on loopback; written to ``directory`` if given.

    With a directory, each party's key is saved as ``<party>.key`` (mode 0600)
    and the config as ``cluster.toml`` referencing them.
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
    config = ClusterConfig(cluster_id, entries, connect_timeout_s=connect_timeout_s, wan=wan,
                           suite=suite)
    if directory is not None:
        path = directory / "cluster.toml"
        path.write_text(config.to_toml())
        config = ClusterConfig(
            cluster_id, entries, connect_timeout_s=connect_timeout_s, wan=wan, path=path,
            suite=suite,
        )
    return config, identities
