"""What every per-family hostile test checks after a cut link, a killed party or a bad byte.

* :func:`assert_stopped`: every surviving party exited non-zero within 30 s of the
  fault (links wait ``cluster.GRACE_S`` for a resume first), its error names the peer
  (``link to P``) and the stage (``[stage: ...]``), it produced no result and left no
  output file;
* :func:`kill_when`: SIGKILL a party once the proxy has carried ``nbytes``, so the
  kill lands mid-protocol whatever the machine's load;
* :func:`assert_detected_or_right`: a damaged byte is fetched again from the sender
  (the right answer), or ends in an authentication failure (or, before the keys are
  set, a failed handshake), never in a wrong answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from cluster import HostileCluster, Outcome
from proxy import FaultProxy

EXIT_WITHIN_S = 30.0


def names_peer_and_stage(stderr: str, parties: Iterable[str]) -> bool:
    """The last error line names a party's link and the stage it stopped in."""
    return any(f"link to {p}" in stderr for p in parties) and "[stage: " in stderr


def assert_stopped(outcomes: dict[str, Outcome], parties: list[str], fault_at: float,
                   outputs: Iterable[Path] = (), killed: str | None = None) -> None:
    """Every party but ``killed`` stopped with a named error in time, leaving nothing."""
    for party, outcome in outcomes.items():
        if party == killed:
            continue
        assert outcome.code not in (0, None), f"{party} did not fail: {outcome.stderr[-800:]}"
        assert outcome.seconds - fault_at < EXIT_WITHIN_S, f"{party} took {outcome.seconds}s"
        assert outcome.result is None
        others = [p for p in parties if p != party]
        assert names_peer_and_stage(outcome.stderr, others), outcome.stderr[-800:]
    left = [str(p) for p in outputs if p.exists()]
    assert not left, f"partial output left behind: {left}"


def kill_when(cluster: HostileCluster, proxy: FaultProxy, party: str, nbytes: int,
              timeout: float = 60.0) -> float:
    """Kill ``party`` once ``nbytes`` crossed the proxy; seconds since start of the kill."""
    deadline = time.monotonic() + timeout
    while proxy.stats.bytes_up + proxy.stats.bytes_down < nbytes:
        assert time.monotonic() < deadline, "the protocol never got that far"
        assert all(p.poll() is None for p in cluster.procs.values()), "a party ended early"
        time.sleep(0.01)
    cluster.kill(party)
    return time.monotonic() - cluster._started


def assert_detected_or_right(outcomes: dict[str, Outcome], parties: list[str],
                             right: Callable[[str, Outcome], bool],
                             outputs: Iterable[Path] = ()) -> None:
    """No party returned a wrong answer; a party that failed says why, naming the link."""
    failed = [o for o in outcomes.values() if o.code != 0]
    for party, outcome in outcomes.items():
        if outcome.code == 0:
            assert right(party, outcome), f"{party} accepted a damaged stream: {outcome.result}"
        else:
            others = [p for p in parties if p != party]
            assert names_peer_and_stage(outcome.stderr, others), outcome.stderr[-800:]
    if failed:
        assert any("failed authentication" in o.stderr or "handshake" in o.stderr
                   for o in failed), [o.stderr[-400:] for o in failed]
        left = [str(p) for p in outputs if p.exists()]
        assert not left, f"output written although the run failed: {left}"


def fault_time(cluster: HostileCluster, proxy: FaultProxy) -> float:
    """Seconds from the cluster's start to the proxy's first fault."""
    assert proxy.stats.first_fault_at is not None, "the fault never fired"
    return proxy.stats.first_fault_at - cluster._started
