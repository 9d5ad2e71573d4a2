"""Job files: every malformed field is an error naming the file, step, key or party."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshmpc.jobs.errors import JobFileError
from meshmpc.jobs.spec import load_job

COMPONENTS = ["t.emit", "t.add", "psi.align"]


def job(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "demo",
        "parties": {"bank": {"data": "bank.parquet", "key": "id", "label": "y"},
                    "gov": {"data": "/abs/gov.csv", "key": "id", "risklist": "r.parquet"}},
        "steps": [{"id": "b", "component": "t.add", "after": ["a"]},
                  {"id": "a", "component": "t.emit", "params": {"scale": 2},
                   "party_params": {"gov": {"secret": 1}}}],
    }
    base.update(changes)
    return base


def error(raw: dict[str, Any]) -> str:
    with pytest.raises(JobFileError) as info:
        load_job(raw, COMPONENTS, base_dir="/base")
    return str(info.value)


def test_a_valid_job_parses_with_resolved_paths_and_topological_order() -> None:
    spec = load_job(job(), COMPONENTS, base_dir="/base")
    assert [s.id for s in spec.steps] == ["a", "b"]
    assert spec.parties["bank"].data == "/base/bank.parquet"
    assert spec.parties["gov"].data == "/abs/gov.csv"
    assert spec.parties["gov"].extra == {"risklist": "r.parquet"}
    assert spec.parties["bank"].label == "y"
    assert spec.step("a").party_params == {"gov": {"secret": 1}}
    assert spec.step("a").parties == ("bank", "gov")
    assert spec.security == "dishonest-majority"


def test_order_is_deterministic_and_follows_file_order_between_independent_steps() -> None:
    steps = [{"id": i, "component": "t.emit", "after": a}
             for i, a in [("z", []), ("y", ["z"]), ("x", []), ("w", ["x", "y"])]]
    spec = load_job(job(steps=steps), COMPONENTS)
    assert [s.id for s in spec.steps] == ["z", "y", "x", "w"]
    assert spec.ancestors("w") == ["z", "y", "x"]


def test_unknown_keys_suggest_the_closest_known_key() -> None:
    assert "did you mean 'steps'" in error({**job(), "stpes": []})
    raw = job()
    raw["steps"][1]["paramz"] = {}
    message = error(raw)
    assert "paramz" in message and "did you mean 'params'" in message and "id a" in message
    raw = job()
    raw["parties"]["bank"]["lable"] = "y"
    assert "parties.bank.lable" in error(raw) and "'label'" in error(raw)


def test_unknown_component_names_the_step_and_suggests() -> None:
    raw = job()
    raw["steps"][0]["component"] = "t.ad"
    message = error(raw)
    assert "step 'b'" in message and "'t.ad'" in message and "did you mean 't.add'" in message


def test_unknown_party_in_party_params_or_step_parties() -> None:
    raw = job()
    raw["steps"][1]["party_params"] = {"telco": {}}
    assert "step 'a'" in error(raw) and "unknown party 'telco'" in error(raw)
    raw = job()
    raw["steps"][1]["parties"] = ["bank", "gv"]
    assert "unknown party 'gv'" in error(raw) and "did you mean 'gov'" in error(raw)


def test_party_params_only_for_parties_of_the_step() -> None:
    raw = job()
    raw["steps"][1]["parties"] = ["bank"]
    assert "unknown party 'gov'" in error(raw)


def test_cycles_and_missing_after_targets() -> None:
    raw = job()
    raw["steps"][1]["after"] = ["b"]
    assert "cycle" in error(raw) and "a" in error(raw)
    raw = job()
    raw["steps"][0]["after"] = ["c"]
    assert "step 'b' runs after 'c'" in error(raw)


def test_duplicate_ids_bad_security_and_missing_fields() -> None:
    raw = job()
    raw["steps"][0]["id"] = "a"
    assert "appears twice" in error(raw)
    assert "honest-majority" in error(job(security="malicious"))
    assert "'name'" in error({k: v for k, v in job().items() if k != "name"})
    assert "non-empty list" in error(job(steps=[]))


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(JobFileError, match="job.yaml.*not valid YAML"):
        load_job(path)
    path.write_text("- a list\n")
    with pytest.raises(JobFileError, match="must be a mapping"):
        load_job(path)


def test_public_digest_ignores_paths_and_private_params() -> None:
    one = load_job(job(), COMPONENTS, base_dir="/one")
    other = job()
    other["steps"][1]["party_params"] = {"gov": {"secret": 2}}
    two = load_job(other, COMPONENTS, base_dir="/two")
    assert one.public_digest() == two.public_digest()
    changed = job()
    changed["steps"][1]["params"] = {"scale": 3}
    assert load_job(changed, COMPONENTS).public_digest() != one.public_digest()
