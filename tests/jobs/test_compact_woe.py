"""ml.binning's compact WOE table survives the job's Parquet artefacts: 1 byte a cell.

pyarrow reads float dictionary columns back dense (8 bytes a cell), so a resumed job
used to hand ml.select / ml.logistic float64 matrices. The artefact writer now stores
the uint8 indices and the per-column WOE tables in the file's metadata and rebuilds
the dictionary arrays on load (meshmpc.jobs.artefacts.compact_for_parquet).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from meshmpc_credit.datagen import generate

from meshmpc.jobs import artefacts
from meshmpc.jobs.api import StepContext, StepOutput, find_table
from meshmpc.jobs.local import run_job_in_memory
from meshmpc.ml.coded import CodedMatrix, is_coded

PARTIES = ("bank", "gov", "fin")
JOB: dict[str, Any] = {
    "name": "compact",
    "security": "honest-majority",
    "parties": {
        "bank": {"data": "data/bank.parquet", "key": "credit_code", "label": "default_12m"},
        "gov": {"data": "data/gov.parquet", "key": "credit_code"},
        "fin": {"data": "data/fin.parquet", "key": "credit_code"},
    },
    "steps": [
        {"id": "align", "component": "psi.align", "params": {"protocol": "kkrt"}},
        {"id": "bins", "component": "ml.binning", "after": ["align"],
         "params": {"method": "quantile", "bins": 5, "woe_dtype": "float32"},
         "party_params": {"bank": {"exclude": ["days_overdue"]}}},
        {"id": "lr", "component": "ml.logistic", "after": ["bins"],
         "params": {"epochs": 2, "validation": 0.0}},
    ],
}


def _feature_columns(table: pa.Table) -> list[str]:
    return [c for c in table.column_names if pa.types.is_dictionary(table.schema.field(c).type)]


def test_a_compact_table_round_trips_bit_identical(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    woe = np.array([-0.731, 0.0, 0.2718281828, -0.731], dtype=np.float32)  # two bins alike
    codes = rng.integers(0, 4, size=1000).astype(np.uint8)
    table = pa.table({
        "gov_f0": pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(woe)),
        "gov_f1": pa.DictionaryArray.from_arrays(pa.array(codes[::-1].copy()),
                                                 pa.array(woe.astype(np.float64) / 3)),
        "default_12m": pa.array(codes % 2, type=pa.int8()),
        "city": pa.array(["a", "b"] * 500).dictionary_encode(),  # not a float table
    })
    folder = tmp_path / "step"
    folder.mkdir()
    entry = artefacts.write_output(folder, StepOutput(tables={"features": table}))
    stored = pq.read_table(folder / "features.parquet")
    assert stored.schema.field("gov_f0").type == pa.uint8()  # 1 byte a cell on disk
    again = artefacts.load_output(folder, entry).tables["features"]
    assert again.equals(table)  # same indices, bit-identical WOE values, same types
    assert again.schema.field("gov_f1").type.value_type == pa.float64()
    assert again.schema.field("city").type == table.schema.field("city").type
    # for pandas and people: plain floats (one WOE in two bins is no valid categorical)
    dense = artefacts.table_from_parquet((folder / "features.parquet").read_bytes(),
                                         compact=False)
    assert dense.schema.field("gov_f0").type == pa.float32()
    assert len(dense.to_pandas()) == 1000
    assert np.array_equal(dense.column("gov_f0").to_numpy(), woe[codes])


SEEN: dict[str, list[pa.Table]] = {}
"""What the capture step received from ml.binning, per party and run (in this process)."""


async def capture(step: StepContext, inputs: Mapping[str, StepOutput],
                  params: Mapping[str, Any]) -> StepOutput:
    """A test step after ml.binning: keeps the features table the runner handed it."""
    table = find_table(inputs, "features")
    assert table is not None
    SEEN.setdefault(step.party, []).append(table)
    return StepOutput(report={"run": params.get("run")})


def _job(run: int) -> dict[str, Any]:
    job = copy.deepcopy(JOB)
    job["steps"].insert(2, {"id": "seen", "component": "test.capture", "after": ["bins"],
                            "params": {"run": run}})
    job["steps"][3]["params"]["epochs"] = 1 + run  # run 2 retrains on the reloaded table
    return job


def _run(tmp_path: Path, job: dict[str, Any], resume: bool) -> dict[str, Any]:
    results = asyncio.run(run_job_in_memory(job, tmp_path / "out", base_dir=tmp_path,
                                            resume=resume, components={"test.capture": capture}))
    for party, result in results.items():
        assert not isinstance(result, BaseException), f"{party}: {result}"
    return results


def test_a_resumed_job_gets_the_binning_artefact_back_compact(tmp_path: Path) -> None:
    generate(tmp_path / "data", rows=500, seed=21, months=0)
    SEEN.clear()
    _run(tmp_path, _job(1), resume=False)
    resumed = _run(tmp_path, _job(2), resume=True)  # bins reloaded from its Parquet artefact
    for party in PARTIES:
        steps = resumed[party]["steps"]
        assert steps["bins"]["status"] == "resumed" and steps["seen"]["status"] == "ran"
        fresh, reloaded = SEEN[party]
        assert reloaded.equals(fresh)  # same indices, bit-identical WOE, same types
        names = _feature_columns(reloaded)
        assert names and is_coded(reloaded, names)
        coded = CodedMatrix.from_table(reloaded, names)
        assert coded.codes.nbytes == reloaded.num_rows * len(names)  # 1 byte a cell
        # and ml.logistic, rerun on the reloaded table, trained on the compact matrix
        matrix = steps["lr"]["report"]["matrix"]
        assert matrix["coded"] and matrix["bytes"] < 2 * reloaded.num_rows * len(names)
    # the artefact's WOE are the binning model's (bin i of a feature -> its WOE)
    model = artefacts.read_json(tmp_path / "out" / "compact" / "gov" / "bins", "binning.json")
    features = SEEN["gov"][1]
    for name in _feature_columns(features):
        woe = np.array([b["woe"] for b in model["features"][name]["bins"]], dtype=np.float32)
        assert np.array_equal(features.column(name).combine_chunks().dictionary.to_numpy(), woe)
