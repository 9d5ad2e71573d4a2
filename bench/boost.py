"""``meshmpc bench boost``: SecureBoost training and held-out AUC against XGBoost.

Every party runs in its own process over the encrypted mesh on loopback (or
the emulated WAN): the bank holds B features and the label, each partner its
own columns of the same aligned rows (synthetic data regenerated from the seed
in every process, so no party reads another's columns). 80 % of the rows train,
20 % are scored through the federated batch prediction. XGBoost trains in this
process on the same rows with the same depth, trees, learning rate, L2, min
child weight and 32-bin histograms, and is scored on the same held-out rows.
One line: ``{"bench": "boost", "rows", "trees", "depth", "s_per_tree", "wall_s",
"bytes_sent", "peak_rss_mb", "auc", "auc_xgboost", ...}``; ``s_per_tree`` is the
bank's training time divided by the trees built, ``bytes_sent`` all parties'
traffic, ``peak_rss_mb`` the largest party's, ``cpu_s`` all parties' CPU seconds
(user + system, the whole run: less sensitive than wall time to other load);
``bytes_sent_by_party`` and ``peak_rss_mb_by_party`` the same per party.

``--data reference`` trains on the credit app's four-party reference data
instead (``meshmpc-credit datagen`` at ``--rows`` rows per party, joined on
credit_code in plaintext as data preparation standing in for psi.align; each
party's own columns standardised / one-hot as in ``bench ml_logistic``; the
label ``default_12m`` at the bank); ``--features`` is then ignored and the
record's ``rows`` is the joined row count (``rows_per_party`` the generated).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from meshmpc_bench._common import add_common, emit, fail, wan_fields, wan_profile
from meshmpc_bench._msgclock import MessageClock, link_estimate

HOLDOUT = 0.2


def parse_features(text: str) -> dict[str, int]:
    """``bank=30,gov=300`` -> {"bank": 30, "gov": 300}; the first party is the label holder."""
    out = {}
    for part in text.split(","):
        name, _, count = part.partition("=")
        if not name or not count.isdigit():
            raise ValueError(f"--features: {part!r} must look like party=COUNT")
        out[name.strip()] = int(count)
    return out


def synthetic(rows: int, features: dict[str, int], seed: int
              ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Columns per party and a label depending on a few features of every party."""
    rng = np.random.default_rng(seed)  # synthetic data only
    parts = {p: rng.normal(size=(rows, k)).astype(np.float64) for p, k in features.items()}
    z = np.zeros(rows)
    for i, x in enumerate(parts.values()):
        if x.shape[1] == 0:
            continue
        w = rng.normal(size=min(8, x.shape[1])) / (1 + i)
        z += x[:, : w.size] @ w + 0.5 * np.sin(2 * x[:, 0]) + (x[:, -1] > 0.8) * 0.7
    z += 0.4 * rng.normal(size=rows)
    y = (z > np.quantile(z, 0.8)).astype(np.float64)
    return parts, y


def split_rows(rows: int) -> np.ndarray:
    """The held-out mask (every 5th row: same in every process, no randomness needed)."""
    return (np.arange(rows) % int(round(1 / HOLDOUT))) == 0


def reference_data(files: dict[str, str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every party's matrix of the joined reference data, and the bank's labels."""
    from meshmpc_bench.ml_logistic import reference_matrix

    parts, y = {}, None
    for party, path in files.items():
        parts[party], labels = reference_matrix(path)
        if labels is not None:
            y = labels
    if y is None:
        raise ValueError("bench boost: no party's reference table has the label default_12m")
    return parts, y


def party_data(party: str, rows: int, features: dict[str, int], seed: int,
               files: dict[str, str] | None) -> tuple[np.ndarray, np.ndarray]:
    """This party's columns and the labels (synthetic, or its reference table)."""
    if files:
        from meshmpc_bench.ml_logistic import reference_matrix

        x, y = reference_matrix(files[party])
        return x, (y if y is not None else np.zeros(x.shape[0]))
    parts, y = synthetic(rows, features, seed)
    return parts[party], y


async def party_job(ctx: Any, rows: int, features: dict[str, int], seed: int,
                    params: dict[str, Any], files: dict[str, str] | None = None,
                    trace: str | None = None) -> dict[str, Any]:
    """One party of the benchmark (run by meshmpc.net.launch in its own process).

    The barrier first: a party's mesh is up once it has *sent* its last handshake
    record, which the WAN shaper releases only when the event loop next runs; the
    data generation below blocks the loop for seconds on a loaded machine, and the
    peer's handshake deadline (5 s) would expire meanwhile.
    """
    from meshmpc.ml.boost import predict_bank, predict_partner, train_bank, train_partner
    from meshmpc.ml.boost_core import BoostParams

    await ctx.barrier("boost-bench-start")
    # Every party's clock starts here, together: the data preparation counts as busy
    # (the bank waits for a partner's features while the partner still bins them).
    clock = MessageClock(ctx, Path(trace) if trace else None)
    x, y = party_data(ctx.party, rows, features, seed, files)
    rows = x.shape[0]
    test = split_rows(rows)
    bank = next(iter(features))
    partners = [p for p in features if p != bank]
    start = time.perf_counter()
    if ctx.party == bank:
        p = BoostParams.from_mapping(params)
        model = await train_bank(ctx, x[~test], y[~test], partners, p, on_tree=_progress)
        train_s = time.perf_counter() - start
        out: dict[str, Any] = {"train_s": train_s, "clock": clock.summary()}
        out["scores"] = await predict_bank(ctx, model, x[test], partners)
        out["trees_built"] = len(model["boosted"]["trees"])
    else:
        model = await train_partner(ctx, x[~test], bank)
        out = {"clock": clock.summary()}
        await predict_partner(ctx, model, x[test])
    await ctx.barrier("boost-bench-end")
    out["bytes_sent"] = int(ctx.traffic().bytes_sent)
    use = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu_s"] = use.ru_utime + use.ru_stime
    hwm = peak_rss_of_this_program()
    if hwm is not None:
        out["peak_rss_mb"] = hwm
    return out


def peak_rss_of_this_program() -> float | None:
    """This process's peak resident memory since its exec, in MiB (VmHWM; see
    :func:`meshmpc.net.launch.peak_rss_mb`, which every launched party reports)."""
    from meshmpc.net.launch import peak_rss_mb

    return peak_rss_mb()


def _progress(tree: int, seconds: float) -> None:
    print(f"bench boost: tree {tree} took {seconds:.1f} s", file=sys.stderr, flush=True)


def xgboost_auc(parts: dict[str, np.ndarray], y: np.ndarray, p: dict[str, Any]) -> float:
    """Held-out AUC of XGBoost (hist) on the pooled columns, same parameters and bins."""
    import xgboost as xgb

    from meshmpc.ml.components_boost import auc

    rows = y.shape[0]
    x = np.hstack(list(parts.values()))
    test = split_rows(rows)
    dtrain = xgb.DMatrix(x[~test], label=y[~test])
    booster = xgb.train(
        {"objective": "binary:logistic", "tree_method": "hist", "max_bin": p["bins"],
         "max_depth": p["depth"], "eta": p["learning_rate"], "lambda": p["l2"],
         "min_child_weight": p["min_child_weight"], "gamma": 0.0,
         "base_score": float(y[~test].mean()), "nthread": 2},
        dtrain, num_boost_round=p["trees"])
    return auc(booster.predict(xgb.DMatrix(x[test])), y[test])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="meshmpc bench boost", description=__doc__)
    add_common(parser)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--features", default="bank=30,gov=300")
    parser.add_argument("--trees", type=int, default=5)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--bins", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.3)
    parser.add_argument("--scheme", default="ou", choices=["ou", "paillier"])
    parser.add_argument("--goss", default=None, help="a,b: GOSS top fraction a, sample b")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=7200.0)
    parser.add_argument("--trace", default=None, metavar="DIR",
                        help="write one line per message of the training to DIR/<party>.log")
    parser.add_argument("--data", choices=["synthetic", "reference"], default="synthetic",
                        help="synthetic columns (--features), or the credit app's four-party "
                             "reference data (meshmpc-credit datagen, --rows per party)")
    args = parser.parse_args(argv)
    if args.data == "reference":
        with tempfile.TemporaryDirectory(prefix="bench-boost-") as tmp:
            from meshmpc_bench.ml_logistic import PARTY_ORDER, reference_tables

            files = {p: str(f) for p, f in reference_tables(args.rows, args.seed,
                                                             Path(tmp)).items()}
            return run(args, {p: 0 for p in PARTY_ORDER}, files)
    try:
        features = parse_features(args.features)
    except ValueError as exc:
        return fail(str(exc))
    return run(args, features, None)


def run(args: argparse.Namespace, features: dict[str, int],
        files: dict[str, str] | None) -> int:
    """Train and score over the mesh, XGBoost beside it; print the record."""
    from meshmpc.ml.components_boost import auc
    from meshmpc.net.launch import run_local

    params = {"trees": args.trees, "depth": args.depth, "bins": args.bins,
              "learning_rate": args.learning_rate, "l2": 1.0, "min_child_weight": 1.0,
              "scheme": args.scheme}
    if args.goss:
        params["goss"] = [float(v) for v in args.goss.split(",")]
    kwargs = {"rows": args.rows, "features": features, "seed": args.seed, "params": params,
              "files": files, "trace": args.trace}
    start = time.perf_counter()
    res = run_local(list(features), "meshmpc_bench.boost:party_job", kwargs,
                    wan=wan_profile(args), timeout=args.timeout)
    wall = time.perf_counter() - start
    bank = res[next(iter(features))]
    parts, y = reference_data(files) if files else synthetic(args.rows, features, args.seed)
    rows = y.shape[0]
    got = auc(np.asarray(bank["scores"]), y[split_rows(rows)])
    if not got > 0.55:
        return fail(f"bench boost: held-out AUC {got:.3f}: the model learnt nothing")
    emit({"bench": "boost", "rows": rows, "trees": args.trees, "depth": args.depth,
          "s_per_tree": round(bank["train_s"] / max(1, bank["trees_built"]), 3),
          "wall_s": round(wall, 3),
          "bytes_sent": sum(int(r["bytes_sent"]) for r in res.values()),
          "peak_rss_mb": round(max(float(r["peak_rss_mb"]) for r in res.values()), 1),
          "cpu_s": round(sum(float(r["cpu_s"]) for r in res.values()), 1),
          "auc": round(got, 5),
          "auc_xgboost": round(xgboost_auc(parts, y, params), 5),
          "trees_built": bank["trees_built"], "data": args.data,
          "rows_per_party": args.rows if files else rows,
          "features": {p: int(x.shape[1]) for p, x in parts.items()},
          "bytes_sent_by_party": {p: int(r["bytes_sent"]) for p, r in res.items()},
          "peak_rss_mb_by_party": {p: round(float(r["peak_rss_mb"]), 1)
                                   for p, r in res.items()},
          "train_clock_by_party": {p: r["clock"] for p, r in res.items()},
          "link_s_estimate": link_estimate({p: r["clock"] for p, r in res.items()},
                                           next(iter(features))),
          "bins": args.bins, "scheme": args.scheme,
          "goss": args.goss, "loadavg": [round(v, 2) for v in os.getloadavg()],
          **wan_fields(args)}, args.json)
    return 0
