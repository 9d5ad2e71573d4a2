"""``meshmpc-credit demo``: the whole loan life cycle on the reference data.

1. generate the four parties' reference data (bank, gov, fin, telco);
2. check every file against its schema and write quality reports (text, HTML);
3. start the four parties as separate processes over the encrypted mesh on
   loopback and report every link;
4. pre-loan job ``jobs/preloan.yaml`` (one process per party): align rows
   (``psi.align``), screen applicants by keyword PIR (``credit.screen``),
   bins -> select -> lr -> card -> eval on the ``ml.*`` components;
5. decide on the held-out applicants through the decision service (joint PIR table per
   partner: screens and joint online score in one query each, :mod:`.demo_decide`);
6. in-loan job ``jobs/inloan.yaml``: twelve months of receiver-only monitoring;
7. post-loan job ``jobs/postloan.yaml``: each party builds its early-warning
   table locally, the joint "overdue within 3 months" model, watch list and
   collection list, roll rates and vintages;
8. the three HTML reports (English and Chinese) under ``<out>/reports/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from meshmpc.data import validate
from meshmpc.jobs.local import run_job_local
from meshmpc.jobs.spec import read_yaml
from meshmpc.net.launch import run_local
from meshmpc_credit.datagen import generate

PARTIES = ["bank", "gov", "fin", "telco"]
JOB_FILE = Path(__file__).with_name("jobs") / "preloan.yaml"
INLOAN_JOB = JOB_FILE.with_name("inloan.yaml")
POSTLOAN_JOB = JOB_FILE.with_name("postloan.yaml")
"""The demo's job; switching the demo to other steps is an edit of this file only."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run the end-to-end four-party demo")
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="working folder")
    parser.add_argument("--rows", type=int, default=1000, help="rows per party")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--applicants", type=int, default=1000, help="applicants screened")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs of the model")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def _stage(number: int, title: str) -> float:
    print(f"\n[{number}] {title}", flush=True)
    return time.perf_counter()


def _done(start: float) -> None:
    print(f"    done in {time.perf_counter() - start:.2f} s", flush=True)


def generate_data(out: Path, rows: int, seed: int) -> dict[str, Path]:
    files = generate(out / "data", rows=rows, seed=seed)
    for party in PARTIES:
        print(f"    {party:<6} {files[party]}")
    return files


def check_data(files: dict[str, Path], reports: Path) -> None:
    for party in PARTIES:
        report = validate(files[f"{party}_schema"], files[party])
        text, html = report.write(reports, party)
        print(f"    {party:<6} {report.rows} rows, {len(report.columns)} columns, "
              f"{len(report.warnings)} warnings -> {html}")


def form_mesh() -> dict[str, Any]:
    results = run_local(PARTIES, "meshmpc.net.check:mesh_report", {"pings": 200, "bulk_mib": 8})
    for i, party in enumerate(PARTIES):
        for peer in PARTIES[i + 1 :]:
            link = results[party]["links"][peer]
            print(f"    {party:>6} <-> {peer:<6} rtt {link['rtt_us_median']:6.0f} us  "
                  f"{link['gbytes_per_s']:5.2f} GB/s  (Ed25519-authenticated, AES-256-GCM)")
    return results


def job_spec(args: argparse.Namespace) -> dict[str, Any]:
    """The demo's job file with the command line's sizes applied to the steps that take them."""
    raw = read_yaml(JOB_FILE)
    for step in raw.get("steps", []):
        params = step.setdefault("params", {})
        if step.get("component") == "credit.screen":
            params["applicants"] = args.applicants
        elif step.get("component") == "ml.logistic":
            params["epochs"] = args.epochs
    return raw


def credit_job(out: Path, args: argparse.Namespace, raw: dict[str, Any] | None = None,
               name: str = JOB_FILE.name) -> dict[str, Any]:
    """Run a job file on the job runner, one process per party (default: pre-loan)."""
    raw = raw or job_spec(args)
    quiet = args.quiet or not sys.stderr.isatty()
    print(f"    job file {name}: " + " -> ".join(s["id"] for s in raw["steps"]))
    results = run_job_local(raw, out, base_dir=out, quiet=quiet)
    bank = results["bank"]
    for step in raw["steps"]:
        print_step(step, bank["steps"][step["id"]]["report"])
    for party in PARTIES:
        steps = results[party]["steps"]
        times = ", ".join(f"{k} {v['wall_s']:.2f}s" for k, v in steps.items() if v.get("wall_s"))
        print(f"    {party:<6} sent {results[party]['bytes_sent'] / 1e6:8.1f} MB   {times}")
    print(f"    artefacts and manifests: {out / raw['name']}/<party>/")
    return results


def print_step(step: dict[str, Any], report: dict[str, Any]) -> None:
    """One line (or two) per step of what the bank learnt."""
    component, name = step["component"], step["id"]
    if not report:
        print(f"    {name}: ({component}) nothing to report at the bank")
    elif component == "psi.align":
        pairs = ", ".join(f"{p} {n}" for p, n in report["pairwise_intersection"].items())
        print(f"    {name}:  {report['aligned_rows']} entities held by all four parties "
              f"({report['protocol'].upper()} PSI bank<->each partner, {report['construction']}; "
              f"pairwise {pairs}), same row order on every node")
    elif component == "credit.screen":
        print(f"    {name}: {report['asked']} applicants asked by keyword PIR; hits "
              + ", ".join(f"{k} {v}" for k, v in report["hits"].items())
              + f"; {report['flagged']} flagged (partners learn nothing of whom was asked)")
    elif component == "ml.evaluate":
        print(f"    {name}:   held-out AUC {report['auc']:.3f}, KS {report['ks']:.3f} "
              f"({report['rows']['test']} test rows; model trained on secret shares)")
    elif component in ("ml.binning", "ml.select", "ml.logistic", "ml.scorecard"):
        print(f"    {name}: ({component}) " + _model_line(report))
    elif component == "credit.inloan":
        alerts = sum(m["grade_drop"] + m["score_drop"] + m["new_list_hit"]
                     for m in report["by_month"])
        drift = [m["month"] for m in report["score_psi"] if m["drift"] != "stable"]
        print(f"    {name}: {report['loans']} loans x {report['months']} months, receiver-only; "
              f"{alerts} alerts; score drift in months {drift or 'none'}")
    elif component == "credit.postloan":
        print(f"    {name}: watch list {report['watch']}; collection list "
              f"{report['collection']['loans']} loans, expected loss "
              f"{report['collection']['expected_loss']:,.0f} CNY")
    elif component == "credit.secure_lr":
        print(f"    {name}:   logistic regression on {report['joint_features']} features from "
              f"four parties, {report['steps']} steps on {report['train_rows']} rows, on secret "
              "shares")
        print(f"            held-out AUC {report['auc_joint']:.3f} joint vs "
              f"{report['auc_bank_only']:.3f} bank-only ({report['test_rows']} rows)")
    else:
        text = json.dumps(report, default=str)
        print(f"    {name}: ({component}) {text[:300]}{'...' if len(text) > 300 else ''}")


def _model_line(report: dict[str, Any]) -> str:
    if "selected" in report:
        return f"{len(report['selected'])} of the bank's features kept"
    if "iv_all" in report:
        return f"IV of {len(report['iv_all'])} features over all parties"
    if "epochs_run" in report:
        return f"{report['epochs_run']} epochs, {report['features']} bank features"
    return f"{report.get('features', 0)} features"


def run(args: argparse.Namespace) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {}
    start = _stage(1, f"generate reference data ({args.rows} rows per party, seed {args.seed})")
    files = generate_data(args.out, args.rows, args.seed)
    _done(start)
    start = _stage(2, "check every party's data against its schema")
    check_data(files, args.out / "quality")
    _done(start)
    start = _stage(3, "four parties form the encrypted mesh (one process each)")
    summary["mesh"] = form_mesh()
    _done(start)
    start = _stage(4, "pre-loan job on the job runner: every party runs the same job file")
    summary["credit"] = credit_job(args.out, args)
    _done(start)
    from meshmpc_credit.demo_lifecycle import run_lifecycle

    summary["lifecycle"] = run_lifecycle(args, lambda raw, name: credit_job(args.out, args,
                                                                           raw, name))
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"\nsummary written to {args.out / 'summary.json'}")
    return 0
