"""The bucketed PSI on a local Ray cluster: same output as one process, retries, errors."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from scale_inputs import COMMON, buckets_of, read_rows, run_psi, write_inputs

from meshmpc.scale import RayOptions

RAY = RayOptions(workers=2, cpus=0.5, link_timeout_s=20.0, start_timeout_s=60.0)


def _check_same_output(single: Path, scaled: Path, buckets: int) -> None:
    """Same rows as the single-process run, bucket-major, and both parties aligned.

    Within a bucket the order is the protocol's canonical order, which depends on the
    run's fresh OPRF keys (two single-process runs differ there too): so rows are
    compared as sets per bucket, and the bucket sequence must be non-decreasing.
    """
    for party in ("bank", "gov"):
        one, many = read_rows(single / f"{party}.csv"), read_rows(scaled / f"{party}.csv")
        assert len(many) == len(one) == COMMON
        seq = buckets_of([r["credit_code"] for r in many], buckets)
        assert seq == sorted(seq), f"{party}: output not in bucket order"
        by_bucket: dict[int, set[Any]] = {}
        for b, row in zip(seq, many, strict=True):
            by_bucket.setdefault(b, set()).add(tuple(row.values()))
        single_seq = buckets_of([r["credit_code"] for r in one], buckets)
        expected: dict[int, set[Any]] = {}
        for b, row in zip(single_seq, one, strict=True):
            expected.setdefault(b, set()).add(tuple(row.values()))
        assert by_bucket == expected
    bank, gov = read_rows(scaled / "bank.csv"), read_rows(scaled / "gov.csv")
    assert [r["credit_code"] for r in bank] == [r["credit_code"] for r in gov]


@pytest.mark.slow  # the killed-worker test checks the same output after a retry
def test_ray_run_gives_the_single_process_output(tmp_path: Path, ray_cluster: Any) -> None:
    inputs = write_inputs(tmp_path)
    single = run_psi(inputs, tmp_path / "single")
    scaled = run_psi(inputs, tmp_path / "ray", ray=RAY)
    assert single["bank"].intersection == scaled["bank"].intersection == COMMON
    scale = scaled["bank"].scale
    assert scale is not None and scale["workers"] == 2 and scale["retries"] == []
    assert all(0 < m < 2048 for m in scale["worker_peak_rss_mb"])
    assert single["gov"].scale is None
    _check_same_output(tmp_path / "single", tmp_path / "ray", buckets=16)


def _pair_workers() -> list[int]:
    """PIDs of live Ray worker processes running a PairWorker (any party)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read()
        except OSError:
            continue
        if b"PairWorker.run" in cmd:
            pids.append(int(entry))
    return pids


def _kill_one_worker_midway(spill_parent: Path, killed: list[int], stop: threading.Event) -> None:
    """Once some bucket is done, SIGKILL one worker that is still running."""
    while not stop.is_set():
        if list(spill_parent.glob(".psi-spill-*/done/item-*.done.json")):
            pids = _pair_workers()
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
                return
        time.sleep(0.01)


def test_killed_worker_bucket_is_retried(tmp_path: Path, ray_cluster: Any) -> None:
    """A worker SIGKILLed mid-run: both coordinators retry exactly the unfinished
    buckets with fresh workers, report it, and the output equals one process's."""
    inputs = write_inputs(tmp_path, seed=2)
    killed: list[int] = []
    stop = threading.Event()
    out = tmp_path / "ray"
    out.mkdir()
    watcher = threading.Thread(target=_kill_one_worker_midway, args=(out, killed, stop))
    watcher.start()
    try:
        scaled = run_psi(inputs, out, ray=RAY, bucket_rows=200)
    finally:
        stop.set()
        watcher.join()
    assert killed, "no worker was running to kill"
    for party in ("bank", "gov"):  # the workers' traffic is the party's traffic
        assert scaled[party].bytes_sent >= scaled[party].scale["worker_bytes_sent"] > 0
    run_psi(inputs, tmp_path / "single", bucket_rows=200)
    assert scaled["bank"].intersection == COMMON
    for party in ("bank", "gov"):
        retries = scaled[party].scale["retries"]
        assert len(retries) == 1 and retries[0]["attempt"] == 0
        assert 0 < len(retries[0]["items"]) < 32  # only the unfinished buckets again
        assert scaled[party].scale["attempts"] == 2
    _check_same_output(tmp_path / "single", out, buckets=32)


def test_missing_ray_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from meshmpc.scale import ScaleConfigError

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    inputs = write_inputs(tmp_path)
    with pytest.raises(ScaleConfigError, match=r"pip install meshmpc\[ray\]") as info:
        run_psi(inputs, tmp_path / "out", ray=RAY)
    assert "party bank" in str(info.value) or "party gov" in str(info.value)
    assert not (tmp_path / "out" / "bank.csv").exists()


@pytest.mark.slow
def test_parties_as_processes_with_the_one_port_relay(tmp_path: Path, ray_cluster: Any) -> None:
    """Both coordinators as processes over the TCP mesh; gov's workers only through gov's
    listening port (ray.relay): the result equals the single-process run's."""
    from meshmpc.net.launch import run_local

    inputs = write_inputs(tmp_path, seed=3)
    address = ray_cluster.get_runtime_context().gcs_address

    def jobs(tag: str, ray: dict[str, Any] | None) -> dict[str, Any]:
        return {p: {"input": str(inputs[p]), "output": str(tmp_path / tag / f"{p}.csv"),
                    "keys": ["credit_code"], "peers": ["gov" if p == "bank" else "bank"],
                    "receiver": "bank", "protocol": "kkrt", "bucket_rows": 400, "quiet": True,
                    **({"ray": ray} if ray else {})} for p in ("bank", "gov")}

    single = run_local(["bank", "gov"], "meshmpc.psi.job:run_party_jobs",
                       {"jobs": jobs("single", None)}, timeout=120)
    setting = {"address": address, "workers": 2, "cpus": 0.5, "relay": True,
               "link_timeout_s": 30.0}
    scaled = run_local(["bank", "gov"], "meshmpc.psi.job:run_party_jobs",
                       {"jobs": jobs("ray", setting)}, timeout=300)
    assert single["bank"]["intersection"] == scaled["bank"]["intersection"] == COMMON
    assert scaled["gov"]["scale"]["workers"] == 2
    assert scaled["gov"]["scale"]["worker_bytes_received"] > 0
    assert scaled["gov"]["scale"]["relayed_links"] >= 2  # both pairs came through gov's port
    _check_same_output(tmp_path / "single", tmp_path / "ray", buckets=16)


@pytest.mark.slow
def test_left_mode_parquet_receiver_only(tmp_path: Path, ray_cluster: Any) -> None:
    """Other job shapes give one process's output too: left join with row numbers into
    Parquet, only the bank learning the rows (gov writes nothing)."""
    import pyarrow.parquet as pq

    inputs = write_inputs(tmp_path, seed=4)
    shape = {"mode": "left", "reveal": "receiver", "suffix": "parquet",
             "row_number_column": "row"}
    single = run_psi(inputs, tmp_path / "single", **shape)
    scaled = run_psi(inputs, tmp_path / "ray", ray=RAY, **shape)
    assert single["bank"].intersection == scaled["bank"].intersection == COMMON
    assert not (tmp_path / "ray" / "gov.parquet").exists()
    one = pq.read_table(tmp_path / "single" / "bank.parquet")
    many = pq.read_table(tmp_path / "ray" / "bank.parquet")
    assert many.schema == one.schema and many.num_rows == one.num_rows
    key = ["psi_matched", "row"]
    assert sorted(zip(*(many.column(c).to_pylist() for c in key), strict=True)) == \
        sorted(zip(*(one.column(c).to_pylist() for c in key), strict=True))
    rows = many.column("row").to_pylist()
    seq = buckets_of(many.column("credit_code").to_pylist(), 16)
    assert seq == sorted(seq)  # bucket-major, as the single-process run
    assert sorted(rows) == list(range(1, len(rows) + 1))
