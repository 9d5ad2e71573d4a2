"""docs/deploy.md end to end: separate config files per party, random start order.

Each party gets its own folder with its own key and its own cluster.toml built
from the snippets ``meshmpc keygen`` prints, binds on 0.0.0.0 and advertises a
127.0.0.x address, and the parties start in a random order with delays. The
test needs the config's separate ``listen`` field; it turns itself on as soon
as the cluster config supports it. The variant without ``listen`` (each party
binds its advertised address) checks the same steps today.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from meshmpc.cli import main
from meshmpc.net.cli import listen_supported
from meshmpc.net.local import free_ports

MESHMPC = [sys.executable, "-m", "meshmpc.cli"]
PARTIES = {"bank": "127.0.0.2", "gov": "127.0.0.3"}


def _keygen(folder: Path, party: str, address: str, listen: str | None) -> str:
    out = io.StringIO()
    args = ["keygen", "--party", party, "--out", str(folder), "--address", address]
    if listen is not None:
        args += ["--listen", listen]
    with contextlib.redirect_stdout(out):
        assert main(args) == 0
    return out.getvalue()


def _configs(tmp: Path, use_listen: bool) -> dict[str, Path]:
    """docs/deploy.md steps 2 and 3: keys, snippets, one config per party."""
    ports = free_ports(len(PARTIES))
    snippets = {}
    for (party, host), port in zip(PARTIES.items(), ports, strict=True):
        (tmp / party).mkdir()
        listen = f"0.0.0.0:{port}" if use_listen else None
        snippets[party] = _keygen(tmp / party, party, f"{host}:{port}", listen)
    paths = {}
    for party in PARTIES:
        entries = [text if other == party else "\n".join(
            line for line in text.splitlines() if not line.startswith("key_file"))
            for other, text in snippets.items()]
        path = tmp / party / "cluster.toml"
        path.write_text('[cluster]\nid = "deploy-test"\nconnect_timeout_s = 60.0\n\n'
                        + "\n".join(entries))
        paths[party] = path
    return paths


def _start_in_random_order(commands: dict[str, list[str]],
                           rng: random.Random) -> dict[str, subprocess.Popen[str]]:
    procs = {}
    for party in rng.sample(list(commands), len(commands)):
        time.sleep(rng.uniform(0.2, 1.5))
        procs[party] = subprocess.Popen(commands[party], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
    return procs


def _finish(procs: dict[str, subprocess.Popen[str]]) -> dict[str, str]:
    outs = {}
    for party, proc in procs.items():
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, f"{party}: {err}"
        outs[party] = out
    return outs


def _deploy_psi_and_pir(tmp: Path, use_listen: bool) -> None:
    rng = random.Random()
    configs = _configs(tmp, use_listen)
    codes = {"bank": [f"9131{i:06d}" for i in range(0, 300)],
             "gov": [f"9131{i:06d}" for i in range(200, 500)]}
    for party, keys in codes.items():
        pacsv.write_csv(pa.table({"credit_code": keys, f"{party}_v": list(range(len(keys)))}),
                        tmp / party / "data.csv")
    psi = {p: [*MESHMPC, "psi", "--config", str(configs[p]), "--party", p,
               "--peer", next(q for q in PARTIES if q != p), "--input",
               str(tmp / p / "data.csv"), "--key", "credit_code", "--output",
               str(tmp / p / "aligned.csv"), "--quiet"] for p in PARTIES}
    outs = _finish(_start_in_random_order(psi, rng))
    assert json.loads(outs["bank"])["intersection"] == 100
    aligned = {p: pacsv.read_csv(tmp / p / "aligned.csv", convert_options=pacsv.ConvertOptions(
        column_types={"credit_code": pa.string()})).column("credit_code").to_pylist()
        for p in PARTIES}
    assert aligned["bank"] == aligned["gov"]
    assert sorted(aligned["bank"]) == sorted(set(codes["bank"]) & set(codes["gov"]))
    (tmp / "bank" / "ask.csv").write_text("code\n9131000250\n9131999999\n")
    pir = {"gov": [*MESHMPC, "pir", "serve", "--config", str(configs["gov"]), "--party", "gov",
                   "--db", str(tmp / "gov" / "data.csv"), "--key", "credit_code",
                   "--client", "bank", "--sessions", "1", "--quiet"],
           "bank": [*MESHMPC, "pir", "query", "--config", str(configs["bank"]), "--party",
                    "bank", "--server", "gov", "--keys", str(tmp / "bank" / "ask.csv"),
                    "--output", str(tmp / "bank" / "hits.csv"), "--quiet"]}
    outs = _finish(_start_in_random_order(pir, rng))
    assert json.loads(outs["bank"]) == {"keys": 2, "found": 1,
                                        "output": str(tmp / "bank" / "hits.csv")}


@pytest.mark.skipif(not listen_supported(),
                    reason="needs the cluster config's separate 'listen' field")
def test_deploy_with_listen_on_all_interfaces(tmp_path: Path) -> None:
    _deploy_psi_and_pir(tmp_path, use_listen=True)


@pytest.mark.slow
def test_deploy_binding_the_advertised_address(tmp_path: Path) -> None:
    _deploy_psi_and_pir(tmp_path, use_listen=False)


def _documented_job() -> str:
    """The job file of docs/deploy.md step 8, as printed there (so the two cannot drift)."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()
    step8 = doc[doc.index("## 8."):doc.index("## 9.")]
    return step8.split("```yaml\n", 1)[1].split("```", 1)[0]


def _job_data(tmp: Path) -> None:
    """Step 5 inputs (CSV with a schema drafted by ``data infer``) for the step 8 job."""
    rng = random.Random(7)
    codes = [f"9131{i:014d}" for i in range(600)]
    rows = {"bank": ["credit_code,name,phone,loan_amount,label"],
            "gov": ["credit_code,tax_paid,employees"]}
    for i, code in enumerate(codes):
        risk = rng.random()
        if i < 450:
            rows["bank"].append(f"{code},firm{i},0755{i:08d},{rng.randint(1, 500) * 1000},"
                                f"{int(rng.random() < risk)}")
        if i >= 100:
            rows["gov"].append(f"{code},{int(risk * 1e6) + rng.randint(0, 99999)},"
                               f"{rng.randint(1, 900)}")
    for party, lines in rows.items():
        (tmp / party / f"{party}.csv").write_text("\n".join(lines) + "\n")
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["data", "infer", "--input", str(tmp / party / f"{party}.csv"),
                         "--out", str(tmp / party / f"{party}.schema.toml")]) == 0
        (tmp / party / "scorecard.yaml").write_text(_documented_job())


@pytest.mark.slow
@pytest.mark.skipif(not listen_supported(),
                    reason="needs the cluster config's separate 'listen' field")
def test_deploy_the_documented_credit_job(tmp_path: Path) -> None:
    configs = _configs(tmp_path, use_listen=True)
    _job_data(tmp_path)
    commands = {p: [*MESHMPC, "job", "run", "scorecard.yaml", "--party", p, "--config",
                    str(configs[p]), "--quiet"] for p in PARTIES}
    procs = {}
    for party in random.sample(list(commands), len(commands)):
        time.sleep(random.uniform(0.2, 1.5))
        procs[party] = subprocess.Popen(commands[party], cwd=tmp_path / party,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
    _finish(procs)
    bank = tmp_path / "bank" / "out" / "scorecard" / "bank"
    aligned = pq.read_table(bank / "align" / "aligned.parquet")
    assert aligned.num_rows == 350 and aligned.schema.field("label").type == pa.int64()
    report = json.loads((bank / "eval" / "report.json").read_text())
    assert 0.5 < report["auc"] <= 1.0
