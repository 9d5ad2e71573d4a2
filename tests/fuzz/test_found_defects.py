"""The defects ``make fuzz`` and the hostile suite found, each pinned by a direct test
(the crashing inputs also stay in the corpus, replayed by test_fuzz_replay)."""

from __future__ import annotations

import asyncio

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from meshmpc.cli import report_error
from meshmpc.data.errors import DataReadError, SchemaFileError
from meshmpc.data.loaders import load_table
from meshmpc.data.schema import schema_from_dict
from meshmpc.errors import stage_of
from meshmpc.jobs.errors import JobFileError
from meshmpc.jobs.spec import load_job
from meshmpc.net.context import Context
from meshmpc.net.errors import PeerDisconnectedError
from meshmpc.net.memory import MemoryMesh
from meshmpc.psi.common import received_positions
from meshmpc.psi.errors import PsiError


@pytest.mark.parametrize("column", [{"min": 1, "max": "9"}, {"min": [1]}, {"max_missing": "x"},
                                    {"nullable": "yes"}, {"categories": "AB"}])
def test_schema_rejects_values_of_the_wrong_type_naming_the_column(column: dict) -> None:
    raw = {"columns": [{"name": "income", "type": "float", **column}]}
    with pytest.raises(SchemaFileError, match="income"):
        schema_from_dict(raw, "bank.schema.toml")


def test_schema_key_must_be_names() -> None:
    raw = {"dataset": {"key": 7}, "columns": [{"name": "a", "type": "int"}]}
    with pytest.raises(SchemaFileError, match="key"):
        schema_from_dict(raw)
    ok = schema_from_dict({"dataset": {"key": "a"}, "columns": [{"name": "a", "type": "int"}]})
    assert ok.key == ("a",)


def test_job_file_that_is_not_utf8_is_a_job_file_error(tmp_path) -> None:
    path = tmp_path / "job.yaml"
    path.write_bytes("name: 作业\n".encode("gb18030"))
    with pytest.raises(JobFileError, match="UTF-8"):
        load_job(path)


def test_damaged_parquet_is_a_read_error_naming_the_file(tmp_path) -> None:
    path = tmp_path / "bank.parquet"
    pq.write_table(pa.table({"credit_code": [f"c{i}" for i in range(100)]}), path)
    data = bytearray(path.read_bytes())
    data[-12:-8] = b"\xff\xff\x00\x00"  # the footer's metadata: garbage
    for damaged in (bytes(data), b"PAR1" + bytes(50) + b"PAR1"):
        path.write_bytes(damaged)
        with pytest.raises(DataReadError, match="bank.parquet"):
            load_table(path)


@pytest.mark.parametrize("sent", [[1, "x"], {"a": 1}, np.zeros((2, 2), np.int64), [0, 0],
                                  np.array([2**63], np.uint64), [-1], None, 3.5])
def test_bad_intersection_positions_are_the_peers_fault(sent: object) -> None:
    with pytest.raises(PsiError, match="party gov"):
        received_positions(sent, 8, "gov")


def test_good_intersection_positions_pass() -> None:
    assert received_positions([3, 1], 8, "gov").tolist() == [3, 1]
    assert received_positions(np.array([7], np.uint32), 8, "gov").tolist() == [7]
    assert received_positions([], 8, "gov").size == 0


def test_a_link_failure_names_the_stage_it_stopped(capsys: pytest.CaptureFixture[str]) -> None:
    meshes = MemoryMesh.group(["bank", "gov"])

    async def wait() -> None:
        ctx = Context(meshes["bank"]).scope("psi-kkrt")
        task = asyncio.ensure_future(ctx.recv("gov", "kkrt/values/0"))
        await asyncio.sleep(0)
        meshes["bank"].mailbox.fail("gov", PeerDisconnectedError("gov", "connection lost"))
        await task

    with pytest.raises(PeerDisconnectedError) as caught:
        asyncio.run(wait())
    assert stage_of(caught.value) == "waiting for 'psi-kkrt/kkrt/values/0' from gov"
    report_error("psi", caught.value, debug=False)
    line = capsys.readouterr().err
    assert "link to gov: connection lost" in line and "[stage: waiting for" in line


@pytest.mark.parametrize("have", [10**12, "x", b"y" * 65])
def test_unbalanced_server_refuses_a_fingerprint_that_is_not_bytes(have: object) -> None:
    """bytes(10**12) would have allocated a terabyte on the peer's word."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from targets import psi_messages
    from targets._peerfix import play

    scenario = psi_messages.SCENARIOS[11]
    assert scenario[0] == "unbalanced" and scenario[3] == "s"
    items = [("r", "psi-unbalanced/ub/have", have)]
    with pytest.raises(PsiError, match="party r sent a set fingerprint"):
        play("s", ["r", "s"], items, psi_messages.job(*scenario), ())


def test_pir_server_answers_an_array_op_as_malformed() -> None:
    """``op == "close"`` on a peer's array raised ValueError and ended the service."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from targets import pir_messages
    from targets._peerfix import Exhausted, ScriptMesh

    items = [("cli", "pir/req", {"op": np.array([1, 2]), "version": np.array([1, 2])}),
             ("cli", "pir/req", {"op": "query", "version": np.array([3, 4])}),
             ("cli", "pir/data", np.zeros(3, np.uint32)), ("cli", "pir/req", {"op": "close"})]
    sent: list[object] = []
    mesh = ScriptMesh("srv", ["srv", "cli"], items)

    async def send(peer: str, tag: str, obj: object) -> None:
        sent.append(obj)

    mesh.send = send  # type: ignore[method-assign]
    try:
        served = asyncio.run(pir_messages.server(Context(mesh)))  # type: ignore[arg-type]
    except Exhausted as exc:  # the tags differ from the server's: say so, do not pass
        raise AssertionError(f"script tags do not match the server's: {exc}") from exc
    assert served == 2
    assert [m.get("error") for m in sent if isinstance(m, dict)] == ["malformed", "stale"]
