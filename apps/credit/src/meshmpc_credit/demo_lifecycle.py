"""Stages 5-8 of ``meshmpc-credit demo``: decisions, in-loan, post-loan, reports.

Everything here reads only what the bank's node holds after the jobs (its own
artefacts under ``<out>/<job>/bank/``, sealed under its vault key and opened
with it), except the observation tables of
stage 7, which every party builds from its own snapshots before the job.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meshmpc.jobs.artefacts import read_local_json, read_local_table
from meshmpc.jobs.spec import read_yaml
from meshmpc.ml.logistic import LogisticConfig, plaintext_reference
from meshmpc.ml.metrics import auc
from meshmpc_credit.postloan.observation import write_observations
from meshmpc_credit.reports.lifecycle import (
    monitoring_report,
    postloan_report,
    preloan_report,
)

PARTIES = ("bank", "gov", "fin", "telco")
RunJob = Callable[[dict[str, Any], str], dict[str, Any]]


def _stage(number: int, title: str) -> float:
    print(f"\n[{number}] {title}", flush=True)
    return time.perf_counter()


def _done(start: float) -> None:
    print(f"    done in {time.perf_counter() - start:.2f} s", flush=True)


def _bank(out: Path, job: str, step: str, name: str) -> Any:
    return read_local_table(out / job / "bank" / step / f"{name}.parquet").to_pandas()


def bank_only_auc(out: Path, label: str = "default_12m") -> float:
    """The bank's own model on its own WOE features, same split (plaintext: its data)."""
    features = _bank(out, "preloan", "bins", "features")
    roles = _bank(out, "preloan", "lr", "split")["role"].to_numpy()
    y = features[label].to_numpy()
    x = features.drop(columns=[label]).to_numpy(float)
    w, b, _, _ = plaintext_reference(x, y, roles, LogisticConfig(epochs=10, batch_size=1024),
                                     [x.shape[1]])  # one owner: the bank
    return float(auc(y[roles == 2], x[roles == 2] @ w + b))


def decide(out: Path) -> dict[str, Any]:
    """Decide on the held-out applicants through the decision service (joint score)."""
    from meshmpc_credit.demo_decide import decide_through_service

    bank = decide_through_service(out)
    counts = bank["decisions"]
    funnel = {"applicants": bank["applicants"],
              "passed risk lists": bank["applicants"] - bank["listed"],
              "approved or referred": counts["approve"] + counts["refer"],
              "approved": counts["approve"]}
    return {"funnel": funnel, "grades": bank["grades"], "service": bank}


def run_lifecycle(args: argparse.Namespace, run_job: RunJob) -> dict[str, Any]:
    """Stages 5-8; returns the summary and prints where the reports are."""
    out: Path = args.out
    summary: dict[str, Any] = {}
    start = _stage(5, "decide on new applicants through the decision service (joint score)")
    summary["decisions"] = decide(out)
    auc_bank = bank_only_auc(out)
    auc_joint = _eval_auc(out, "preloan")
    print(f"    held-out AUC: joint {auc_joint:.3f} vs bank-only {auc_bank:.3f}")
    summary["auc"] = {"joint": auc_joint, "bank_only": auc_bank}
    _done(start)
    start = _stage(6, "in-loan: twelve months of receiver-only monitoring (credit.inloan)")
    here = Path(__file__).with_name("jobs")
    summary["inloan"] = run_job(read_yaml(here / "inloan.yaml"), "inloan.yaml")["bank"]
    _done(start)
    start = _stage(7, "post-loan: early-warning model, watch list, collection list")
    for party in PARTIES:
        write_observations(party, out / "data" / f"{party}.monthly.parquet",
                           out / "data" / "postloan" / f"{party}.parquet")
    summary["postloan"] = run_job(read_yaml(here / "postloan.yaml"), "postloan.yaml")["bank"]
    _done(start)
    start = _stage(8, "reports (HTML, English and Chinese)")
    summary["reports"] = write_reports(out, summary)
    for path in summary["reports"]:
        print(f"    {path}")
    _done(start)
    return summary


def _eval_auc(out: Path, job: str) -> float:
    return float(read_local_json(out / job / "bank" / "eval" / "report.json")["auc"])


def write_reports(out: Path, summary: dict[str, Any]) -> list[str]:
    """The three life-cycle reports from the bank's artefacts."""
    reports = out / "reports"
    inloan = read_local_json(out / "inloan" / "bank" / "monitor" / "report.json")
    post = read_local_json(out / "postloan" / "bank" / "warn" / "report.json")
    paths = [
        preloan_report(reports / "preloan.html", summary["decisions"]["funnel"],
                       summary["decisions"]["grades"],
                       {"joint (4 parties)": summary["auc"]["joint"],
                        "bank only": summary["auc"]["bank_only"]}),
        monitoring_report(reports / "monitoring.html", inloan,
                          _bank(out, "inloan", "monitor", "alerts")),
        postloan_report(reports / "postloan.html", post,
                        _bank(out, "postloan", "warn", "watch_list"),
                        _bank(out, "postloan", "warn", "collection_list")),
    ]
    return [str(p) for p in paths]
