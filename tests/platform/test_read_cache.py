"""List pages are served from the page cache, and never after a write to their tables."""

import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import update

from meshmpc.platform import readcache
from meshmpc.platform.db import NodeDatabase
from meshmpc.platform.models import Dataset, Job, JobParty, JobStep
from meshmpc.platform.readcache import PageCache, TableVersions, written_table


@pytest.mark.parametrize(("statement", "table"), [
    ("INSERT INTO datasets (name) VALUES (?)", "datasets"),
    ('  update "job_steps" SET state=?', "job_steps"),
    ("DELETE FROM jobs WHERE id = ?", "jobs"),
    ("INSERT OR REPLACE INTO peers VALUES (?)", "peers"),
    ("SELECT * FROM jobs", None),
    ("CREATE TABLE x (a int)", None),
])
def test_written_table_names_the_changed_table(statement, table):
    assert written_table(statement) == table


def _names(client):
    return [d["name"] for d in client.get("/api/v1/datasets?limit=50").json()["items"]]


def test_dataset_page_follows_api_orm_and_core_writes(gov_node, tmp_path):
    ana, node = gov_node.as_user("ana"), gov_node.node
    assert _names(ana) == []
    hits = node.pages.hits
    assert _names(ana) == []
    assert node.pages.hits == hits + 1, "an unchanged page is served from the cache"
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"k": ["a"]}), path)
    assert ana.post("/api/v1/datasets", json={"name": "api", "uri": str(path)}).status_code == 201
    assert _names(ana) == ["api"]
    with node.db.session() as s:  # an ORM write, as the orchestrator makes them
        s.add(Dataset(name="orm", uri="x", columns=[]))
    assert _names(ana) == ["api", "orm"]
    with node.db.engine.begin() as conn:  # a Core write
        conn.execute(update(Dataset.__table__).values(description="changed"))
    items = ana.get("/api/v1/datasets?limit=50").json()["items"]
    assert [d["description"] for d in items] == ["changed", "changed"]


def test_job_page_follows_step_states(gov_node):
    ana, node = gov_node.as_user("ana"), gov_node.node
    assert ana.get("/api/v1/jobs").json()["total"] == 0
    with node.db.session() as s:
        s.add(Job(id="j1", name="card", initiator="bank", spec="{}", submitted_by="x",
                  parties=[JobParty(party="bank", approval="approved"), JobParty(party="gov")],
                  steps=[JobStep(party="gov", step="align")]))
    job = ana.get("/api/v1/jobs").json()["items"][0]
    assert job["step_states"] == {"Pending": 1} and job["approvals"]["gov"] == "pending"
    with node.db.session() as s:
        s.get(JobStep, ("j1", "gov", "align")).state = "Running"
    assert ana.get("/api/v1/jobs").json()["items"][0]["step_states"] == {"Running": 1}
    assert ana.get("/api/v1/jobs?state=Running").json()["total"] == 0


def test_page_rendered_before_a_commit_is_never_served_after_it(tmp_path):
    db = NodeDatabase(f"sqlite:///{tmp_path / 'n.db'}")
    db.upgrade()
    pages = PageCache(db.versions)
    key, tables = ("datasets",), ("datasets",)
    page, versions = pages.lookup(key, tables)  # a reader starts rendering ...
    assert page is None
    with db.session() as s:  # ... a write commits meanwhile ...
        s.add(Dataset(name="late", uri="x", columns=[]))
    pages.store(key, versions, {"items": []})  # ... and the stale render is stored
    assert pages.lookup(key, tables)[0] is None
    assert pages.get_or_render(key, tables, lambda: {"items": ["late"]}) == b'{"items":["late"]}'
    assert pages.lookup(key, tables)[0] == b'{"items":["late"]}'


def test_rolled_back_write_only_costs_a_render(tmp_path):
    db = NodeDatabase(f"sqlite:///{tmp_path / 'n.db'}")
    db.upgrade()
    before = db.versions.of(("datasets", "jobs"))
    with pytest.raises(RuntimeError), db.session() as s:
        s.add(Dataset(name="x", uri="x", columns=[]))
        s.flush()
        raise RuntimeError("abort")
    after = db.versions.of(("datasets", "jobs"))
    assert after[0] > before[0] and after[1] == before[1]


def test_another_process_write_seen_within_max_age(tmp_path, monkeypatch):
    monkeypatch.setattr(readcache, "MAX_AGE_S", 0.3)
    url = f"sqlite:///{tmp_path / 'n.db'}"
    db, other = NodeDatabase(url), NodeDatabase(url)
    db.upgrade()
    pages = PageCache(TableVersions(db.engine))

    def render():
        with db.session() as s:
            return sorted(d.name for d in s.query(Dataset))
    assert pages.get_or_render(("d",), ("datasets",), render) == b"[]"
    with other.session() as s:  # its events do not reach ``db``'s versions
        s.add(Dataset(name="cli", uri="x", columns=[]))
    assert pages.get_or_render(("d",), ("datasets",), render) == b"[]"
    time.sleep(0.35)
    assert pages.get_or_render(("d",), ("datasets",), render) == b'["cli"]'
