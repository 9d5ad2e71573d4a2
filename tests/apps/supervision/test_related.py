"""supervision.related: the multi-bank groups and their exposures equal a networkx
computation on the pooled borrowers; each bank learns exactly its own such groups."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from meshmpc_supervision.datagen import related_job_file, write_related
from meshmpc_supervision.related import registry_groups

from meshmpc.jobs.local import run_job_in_memory


def _expected(registry: Path, paths: dict[str, Path]) -> pd.DataFrame:
    links = pq.read_table(registry).to_pandas()
    graph = nx.from_edgelist(zip(links.a, links.b, strict=True))
    group_of = {}
    for component in nx.connected_components(graph):
        key = min(component)
        group_of.update(dict.fromkeys(component, key))
    frames = []
    for bank, path in paths.items():
        frame = pq.read_table(path).to_pandas()
        frame["group"] = frame.credit_code.map(group_of)
        frame["bank"] = bank
        frames.append(frame.dropna(subset=["group"]))
    pooled = pd.concat(frames)
    totals = pooled.groupby("group").agg(banks=("bank", "nunique"),
                                         exposure_fen=("exposure_fen", "sum"))
    return totals[totals.banks >= 2], pooled


@pytest.mark.parametrize("security", ["dishonest-majority", "honest-majority"])
def test_groups_and_exposures_equal_networkx_and_banks_see_only_theirs(
        tmp_path: Path, security: str) -> None:
    registry, paths = write_related(tmp_path / "data", 3, 1500, 12000)
    triples = "dealer" if security == "dishonest-majority" else "none"
    job = related_job_file(tmp_path, registry, paths, triples=triples, security=security)
    results = asyncio.run(run_job_in_memory(job, tmp_path / "out"))
    assert not any(isinstance(r, BaseException) for r in results.values()), results
    expected, pooled = _expected(registry, paths)
    out = tmp_path / "out" / "related-party-exposure"
    got = pq.read_table(out / "pboc" / "related" / "related_groups.parquet").to_pandas()
    got = got.set_index("group").sort_index()
    assert len(got) == len(expected) > 50
    assert (got.banks == expected.loc[got.index, "banks"]).all()
    assert (got.exposure_fen == expected.loc[got.index, "exposure_fen"]).all()
    page = (out / "pboc" / "related" / "related_report.html").read_text()
    assert "<img" in page and f"{len(expected):,}" in page
    for bank in paths:
        mine = pq.read_table(out / bank / "related" / "my_related_groups.parquet").to_pandas()
        own_groups = set(pooled[pooled.bank == bank].group)
        assert set(mine.group) == own_groups & set(expected.index)
        assert (mine.set_index("group").exposure_fen
                == expected.loc[mine.group, "exposure_fen"].to_numpy()).all()


def test_registry_groups_are_components_keyed_by_their_smallest_code(tmp_path: Path) -> None:
    import pyarrow as pa

    path = tmp_path / "links.parquet"
    pq.write_table(pa.table({"a": ["c", "b", "x"], "b": ["a", "c", "y"]}), path)
    groups = registry_groups(path)
    assert list(groups["keys"]) == ["a", "x"] and list(groups["sizes"]) == [3, 2]
    assert dict(zip(groups["firms"], groups["group_of"], strict=True)) == {
        "a": 0, "b": 0, "c": 0, "x": 1, "y": 1}


def test_bad_input_names_party_file_column_and_row(tmp_path: Path) -> None:
    import pyarrow as pa

    registry, paths = write_related(tmp_path / "data", 2, 200, 1000)
    frame = pq.read_table(paths["bank2"]).to_pandas()
    frame.loc[6, "exposure_fen"] = -1
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), paths["bank2"])
    job = related_job_file(tmp_path, registry, paths, triples="dealer")
    results = asyncio.run(run_job_in_memory(job, tmp_path / "out"))
    message = str(results["bank2"])
    assert "party bank2" in message and "column exposure_fen, row 7" in message
    assert all(isinstance(r, BaseException) for r in results.values())
    (tmp_path / "gone").mkdir()
    job = related_job_file(tmp_path / "gone", tmp_path / "missing.parquet", paths,
                           triples="dealer")
    results = asyncio.run(run_job_in_memory(job, tmp_path / "out2"))
    assert all("missing.parquet" in str(r) for r in results.values()), results


def test_views_a_bank_receives_only_its_own_groups_and_shares_look_random(
        tmp_path: Path) -> None:
    """Every message each party receives, recorded (honest majority: the regulator, bank1
    as co-aggregator and bank2 compute; bank3 outside): bank3 gets in the step exactly
    one part of its packed totals from each compute party; the co-aggregator's masked
    vectors from the other banks look uniform."""
    sys.path.insert(0, str(Path(__file__).parent))
    from supervision_views import assert_uniform_words, run_recorded, step_messages

    registry, paths = write_related(tmp_path / "data", 3, 1500, 12000)
    job = related_job_file(tmp_path, registry, paths, security="honest-majority")
    views = run_recorded(job, ["pboc", *paths], tmp_path / "out")
    groups = len(registry_groups(registry)["keys"])
    outside = step_messages(views, "bank3", "related")
    assert sorted(peer for peer, _ in outside) == ["bank1", "bank2", "pboc"]
    assert all(isinstance(part, np.ndarray) and part.shape == (groups,)
               for _, part in outside)
    masked = step_messages(views, "bank1", "related", "/masked")
    assert sorted(peer for peer, _ in masked) == ["bank2", "bank3"]
    for _, words in masked:
        assert_uniform_words(words)
