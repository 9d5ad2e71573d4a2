"""File in, file out: aligned outputs equal plaintext set operations."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from meshmpc.net import run_parties
from meshmpc.psi import KeyOptions, PsiJob, PsiMismatchError, run_job
from meshmpc.psi.errors import PsiError, PsiInputError


def random_keys(rng: random.Random, n: int, prefix: str = "") -> list[str]:
    return [f"{prefix}{rng.getrandbits(64):016x}" for _ in range(n)]


def write_csv(path: Path, columns: dict[str, list[object]]) -> Path:
    pacsv.write_csv(pa.table(columns), path)
    return path


def _files(tmp: Path, a_keys: list[str], b_keys: list[str]) -> tuple[Path, Path]:
    a = write_csv(tmp / "bank.csv", {"credit_code": a_keys,
                                     "income": [len(k) for k in a_keys]})
    b = write_csv(tmp / "gov.csv", {"credit_code": b_keys, "tax": [k[::-1] for k in b_keys]})
    return a, b


def _run(tmp: Path, a: Path, b: Path, **over: object) -> dict:
    def job(party: str, path: Path) -> PsiJob:
        fields: dict = dict(input=path, keys=KeyOptions(("credit_code",)),
                            peers=["gov" if party == "bank" else "bank"], receiver="bank",
                            output=tmp / f"out-{party}.csv", workers=0)
        fields.update({k: v for k, v in over.items() if k not in ("bank", "gov")})
        fields.update(over.get(party, {}))  # type: ignore[call-overload]
        return PsiJob(**fields)

    jobs = {"bank": job("bank", a), "gov": job("gov", b)}

    async def party(ctx):  # noqa: ANN001, ANN202
        return await run_job(ctx, jobs[ctx.party])

    return run_parties(["bank", "gov"], party)


def _read(path: Path) -> list[dict]:
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types={"credit_code": "string"})).to_pylist()


@pytest.mark.parametrize("protocol", ["ecdh", "kkrt"])
@pytest.mark.parametrize("shape", ["half", "empty_a", "one", "disjoint", "full", "unicode"])
def test_inner_join_matches_plaintext(tmp_path: Path, shape: str, protocol: str) -> None:
    rng = random.Random(shape)
    common = random_keys(rng, 30)
    a_keys = common + random_keys(rng, 20, "a")
    b_keys = random_keys(rng, 25, "b") + common[::-1]
    if shape == "empty_a":
        a_keys = []
    elif shape == "one":
        a_keys, b_keys = [common[0]], [common[0]]
    elif shape == "disjoint":
        b_keys = random_keys(rng, 40, "z")
    elif shape == "full":
        b_keys = list(reversed(a_keys))
    elif shape == "unicode":
        a_keys = [f"企业{k}" * 40 for k in a_keys]
        b_keys = [f"企业{k}" * 40 for k in b_keys]
    a, b = _files(tmp_path, a_keys, b_keys)
    res = _run(tmp_path, a, b, protocol=protocol)
    want = set(a_keys) & set(b_keys)
    assert res["bank"].intersection == len(want)
    out_a, out_b = _read(tmp_path / "out-bank.csv"), _read(tmp_path / "out-gov.csv")
    assert [r["credit_code"] for r in out_a] == [r["credit_code"] for r in out_b]
    assert set(r["credit_code"] for r in out_a) == want and len(out_a) == len(want)
    assert all(r["tax"] == r["credit_code"][::-1] for r in out_b)


@pytest.mark.parametrize("protocol", ["ecdh", "kkrt"])
def test_left_and_difference_modes(tmp_path: Path, protocol: str) -> None:
    rng = random.Random(7)
    common = random_keys(rng, 10)
    a_keys = random_keys(rng, 5, "a") + common
    b_keys = common[:6] + random_keys(rng, 5, "b")
    a, b = _files(tmp_path, a_keys, b_keys)
    _run(tmp_path, a, b, mode="left", protocol=protocol)
    left = _read(tmp_path / "out-bank.csv")
    assert len(left) == len(a_keys)
    matched = [r["credit_code"] for r in left if r["psi_matched"]]
    assert matched == [r["credit_code"] for r in _read(tmp_path / "out-gov.csv")][:6]
    assert set(matched) == set(common[:6])
    _run(tmp_path, a, b, mode="difference", protocol=protocol)
    diff = [r["credit_code"] for r in _read(tmp_path / "out-bank.csv")]
    assert diff == [k for k in a_keys if k not in set(b_keys)]


@pytest.mark.parametrize("protocol", ["ecdh", "kkrt"])
def test_receiver_only(tmp_path: Path, protocol: str) -> None:
    rng = random.Random(3)
    common = random_keys(rng, 12)
    a, b = _files(tmp_path, common + random_keys(rng, 3), random_keys(rng, 4) + common)
    res = _run(tmp_path, a, b, reveal="receiver", protocol=protocol)
    assert res["bank"].output_rows == 12 and res["gov"].output is None
    assert not (tmp_path / "out-gov.csv").exists()
    got = {r["credit_code"] for r in _read(tmp_path / "out-bank.csv")}
    assert got == set(common)


def test_cardinality_only(tmp_path: Path) -> None:
    rng = random.Random(3)
    common = random_keys(rng, 12)
    a, b = _files(tmp_path, common + random_keys(rng, 3), random_keys(rng, 4) + common)
    res = _run(tmp_path, a, b, reveal="receiver")
    assert res["bank"].output_rows == 12 and res["gov"].output is None
    assert not (tmp_path / "out-gov.csv").exists()
    (tmp_path / "out-bank.csv").unlink()
    res = _run(tmp_path, a, b, reveal="cardinality")
    assert res["bank"].intersection == 12 and res["gov"].intersection is None
    assert res["bank"].output is None and not (tmp_path / "out-bank.csv").exists()


def test_duplicates_and_composite_keys(tmp_path: Path) -> None:
    a = write_csv(tmp_path / "bank.csv", {"code": ["1", "2", "2", "3", ""],
                                          "region": ["x", "y", "y", "z", "w"]})
    b = write_csv(tmp_path / "gov.csv", {"code": ["2", "3", "3"], "region": ["y", "q", "z"]})
    keys = KeyOptions(("code", "region"))
    res = _run(tmp_path, a, b, keys=keys)
    assert res["bank"].report.duplicates == 1 and res["bank"].report.empty_examples == [5]
    got = [(r["code"], r["region"]) for r in pacsv.read_csv(tmp_path / "out-gov.csv").to_pylist()]
    assert sorted(got) == [(2, "y"), (3, "z")]


def test_mismatched_parameters_fail_at_start(tmp_path: Path) -> None:
    a, b = _files(tmp_path, ["x"], ["x"])
    with pytest.raises(PsiMismatchError, match="'mode' differs"):
        _run(tmp_path, a, b, bank={"mode": "left"})
    assert not (tmp_path / "out-bank.csv").exists()
    with pytest.raises(PsiMismatchError, match="casefold"):
        _run(tmp_path, a, b, gov={"keys": KeyOptions(("credit_code",), casefold=True)})


def test_missing_column_names_file(tmp_path: Path) -> None:
    a, b = _files(tmp_path, ["x"], ["x"])
    with pytest.raises(PsiInputError, match="gov.csv: column 'nope'"):
        _run(tmp_path, a, b, gov={"keys": KeyOptions(("nope",))})


def test_kkrt_refuses_cardinality_only(tmp_path: Path) -> None:
    a, b = _files(tmp_path, ["x"], ["x"])
    with pytest.raises(PsiError, match="cardinality-only PSI needs protocol 'ecdh'"):
        _run(tmp_path, a, b, reveal="cardinality", protocol="kkrt")


@pytest.mark.parametrize("protocol", ["ecdh", "kkrt"])
@pytest.mark.parametrize("mode", ["inner", "left"])
@pytest.mark.parametrize("spill_rows", [0, 1 << 25], ids=["disk", "memory"])
def test_bucketed_run_matches_plaintext(tmp_path: Path, protocol: str, mode: str,
                                        spill_rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Buckets spilled to sealed files or kept in memory: the same plaintext answer."""
    monkeypatch.setattr("meshmpc.psi.stream.MEMORY_SPILL_ROWS", spill_rows)
    rng = random.Random(11)
    common = random_keys(rng, 300)
    a_keys = common + random_keys(rng, 200, "a") + [common[5], ""]
    b_keys = random_keys(rng, 250, "b") + common[::-1]
    a, b = _files(tmp_path, a_keys, b_keys)
    res = _run(tmp_path, a, b, protocol=protocol, mode=mode, bucket_rows=64)
    assert res["bank"].intersection == 300
    assert res["bank"].report.duplicates == 1 and res["bank"].report.empty == 1
    assert res["bank"].report.duplicate_examples == [(501, 6)]
    out_a, out_b = _read(tmp_path / "out-bank.csv"), _read(tmp_path / "out-gov.csv")
    if mode == "inner":
        assert [r["credit_code"] for r in out_a] == [r["credit_code"] for r in out_b]
        assert set(r["credit_code"] for r in out_a) == set(common) and len(out_a) == 300
    else:
        assert len(out_a) == 500 and sum(r["psi_matched"] for r in out_a) == 300
    assert not list(tmp_path.glob(".psi-spill-*"))


def test_protocol_mismatch_fails_at_start(tmp_path: Path) -> None:
    a, b = _files(tmp_path, ["x"], ["x"])
    with pytest.raises(PsiMismatchError, match="'protocol' differs"):
        _run(tmp_path, a, b, bank={"protocol": "kkrt"})


def test_parquet_in_and_out_with_payload(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": [1, 2, 3, 4], "x": [1.5, 2.5, 3.5, 4.5], "drop": [0] * 4}),
                   tmp_path / "bank.parquet")
    pq.write_table(pa.table({"id": ["4", "2", "9"], "y": ["d", "b", "z"]}),
                   tmp_path / "gov.parquet")
    res = _run(tmp_path, tmp_path / "bank.parquet", tmp_path / "gov.parquet",
               keys=KeyOptions(("id",)), protocol="kkrt",
               bank={"payload": ["x"], "output": tmp_path / "bank.parquet.out.parquet"},
               gov={"output": tmp_path / "gov.out.parquet"})
    assert res["bank"].intersection == 2
    bank = pq.read_table(tmp_path / "bank.parquet.out.parquet")
    gov = pq.read_table(tmp_path / "gov.out.parquet")
    assert bank.column_names == ["id", "x"] and gov.column_names == ["id", "y"]
    assert bank.column("id").to_pylist() == gov.column("id").to_pylist()
    pairs = zip(bank.column("id").to_pylist(), bank.column("x").to_pylist(), strict=True)
    assert sorted(pairs) == [("2", 2.5), ("4", 4.5)]


def _schema(path: Path, low: int) -> None:
    path.write_text(
        '[dataset]\nname = "bank"\nkey = ["credit_code"]\n\n'
        '[[columns]]\nname = "credit_code"\ntype = "string"\n\n'
        f'[[columns]]\nname = "income"\ntype = "int"\nmin = {low}\n'
    )


def test_input_breaking_its_schema_stops_both_parties_without_output(tmp_path: Path) -> None:
    import asyncio

    from meshmpc.data.jobcheck import PeerInputError
    from meshmpc.errors import DataError
    from meshmpc.net import Context, MemoryMesh

    rng = random.Random(5)
    a, b = _files(tmp_path, random_keys(rng, 20), random_keys(rng, 20))
    _schema(tmp_path / "bank.schema.toml", low=100)  # every income is 16: out of range
    meshes = MemoryMesh.group(["bank", "gov"])

    def job(party: str, path: Path) -> PsiJob:
        return PsiJob(input=path, keys=KeyOptions(("credit_code",)), receiver="bank",
                      peers=["gov" if party == "bank" else "bank"], protocol="kkrt",
                      output=tmp_path / f"out-{party}.csv")

    async def both() -> list:
        return await asyncio.gather(run_job(Context(meshes["bank"]), job("bank", a)),
                                    run_job(Context(meshes["gov"]), job("gov", b)),
                                    return_exceptions=True)

    bank, gov = asyncio.run(both())
    assert isinstance(bank, DataError) and "income" in str(bank) and "bank.csv" in str(bank)
    assert isinstance(gov, PeerInputError) and "bank" in str(gov)
    assert not (tmp_path / "out-bank.csv").exists() and not (tmp_path / "out-gov.csv").exists()


def test_input_meeting_its_schema_runs_and_no_validate_skips_it(tmp_path: Path) -> None:
    rng = random.Random(6)
    common = random_keys(rng, 10)
    a, b = _files(tmp_path, common + random_keys(rng, 5), common)
    _schema(tmp_path / "bank.schema.toml", low=1)
    out = _run(tmp_path, a, b, protocol="kkrt")
    assert out["bank"].intersection == 10 and "validate" in out["bank"].phases
    _schema(tmp_path / "bank.schema.toml", low=100)
    skipped = _run(tmp_path, a, b, protocol="kkrt", validate=False)
    assert skipped["bank"].intersection == 10 and "validate" not in skipped["bank"].phases


def test_validation_switch_must_match(tmp_path: Path) -> None:
    rng = random.Random(7)
    a, b = _files(tmp_path, random_keys(rng, 5), random_keys(rng, 5))
    with pytest.raises(PsiMismatchError, match="validate"):
        _run(tmp_path, a, b, protocol="kkrt", gov={"validate": False})
