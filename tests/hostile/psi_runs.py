"""``meshmpc psi run`` parties as real CLI processes, for the PSI hostile tests."""

from __future__ import annotations

from pathlib import Path

from cluster import HostileCluster

ROWS = 3000


def write_inputs(cluster: HostileCluster, rows: int = ROWS) -> dict[str, set[str]]:
    """One CSV per party (``<party>.csv``): overlapping credit codes; returns the key sets."""
    keys = {}
    for i, party in enumerate(cluster.parties):
        start = i * rows // 4
        codes = [f"91330100MA{k:08d}" for k in range(start, start + rows)]
        body = "".join(f"{code},{k}\n" for k, code in enumerate(codes))
        (cluster.directory / f"{party}.csv").write_text("credit_code,v\n" + body)
        keys[party] = set(codes)
    return keys


def start_psi(cluster: HostileCluster, protocol: str, receiver: str, reveal: str = "all"
              ) -> None:
    """Every party runs ``meshmpc psi run`` with the same options and its own files."""
    for party in cluster.parties:
        peers = [a for p in cluster.parties if p != party for a in ("--peer", p)]
        cluster.start_cli(party, ["psi", "run", *peers, "--input", f"{party}.csv",
                                  "--key", "credit_code", "--protocol", protocol,
                                  "--receiver", receiver, "--reveal", reveal,
                                  "--output", f"{party}.out.csv", "--no-progress",
                                  "--workers", "0", "--connect-timeout", "20"])


def outputs(cluster: HostileCluster) -> list[Path]:
    """Every file a party's output could have left (the output and any temporary)."""
    return [p for p in cluster.directory.iterdir() if ".out." in p.name] + [
        cluster.directory / f"{party}.out.csv" for party in cluster.parties]


def output_keys(cluster: HostileCluster, party: str) -> set[str]:
    lines = (cluster.directory / f"{party}.out.csv").read_text().splitlines()[1:]
    return {line.split(",")[0].strip('"') for line in lines}
