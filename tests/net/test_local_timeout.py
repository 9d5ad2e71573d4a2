"""Local clusters wait MESHMPC_CONNECT_TIMEOUT_S for their peers (benchmarks set 120 s)."""

from __future__ import annotations

import pytest

from meshmpc.net.local import LOCAL_CONNECT_TIMEOUT_S, make_local_cluster


@pytest.mark.parametrize("value,expected", [(None, LOCAL_CONNECT_TIMEOUT_S), ("95", 95.0),
                                            ("junk", LOCAL_CONNECT_TIMEOUT_S),
                                            ("-1", LOCAL_CONNECT_TIMEOUT_S)])
def test_local_cluster_connect_timeout_follows_the_environment(
        monkeypatch: pytest.MonkeyPatch, value: str | None, expected: float) -> None:
    if value is None:
        monkeypatch.delenv("MESHMPC_CONNECT_TIMEOUT_S", raising=False)
    else:
        monkeypatch.setenv("MESHMPC_CONNECT_TIMEOUT_S", value)
    config, _ = make_local_cluster(["a", "b"])
    assert config.connect_timeout_s == expected
    explicit, _ = make_local_cluster(["a", "b"], connect_timeout_s=7.0)
    assert explicit.connect_timeout_s == 7.0


def test_the_bench_command_sets_a_longer_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse
    import os

    from meshmpc import benchcli

    monkeypatch.delenv("MESHMPC_CONNECT_TIMEOUT_S", raising=False)
    with pytest.raises(SystemExit):
        benchcli.run(argparse.Namespace(name="no-such-bench", rest=[]))
    assert os.environ["MESHMPC_CONNECT_TIMEOUT_S"] == benchcli.BENCH_CONNECT_TIMEOUT_S
