"""Vertical logistic regression benchmark: parties as separate processes over the mesh.

``meshmpc bench ml --op logistic`` (bench/ml.py) calls :func:`run_logistic`;
``meshmpc bench ml_logistic --rows N --features bank=8,gov=500,fin=300,telco=192
--epochs E --security dishonest-majority|honest-majority --json`` runs it alone.
Prints ``{"bench": "ml.logistic", "security", "rows", "features", "parties",
"wall_s", "bytes_sent", "peak_rss_mb", "auc", "auc_plaintext", ...}``:

- ``wall_s``: the slowest party's time from session set-up to the bank holding
  the scores (training, revealing weights, scoring every row), median over
  ``--repeats``; ``cpu_s``: CPU seconds of all party processes in that time (less
  sensitive to other load on the machine than the wall time);
- ``bytes_sent``: all parties' bytes sent in that time (``bytes_sent_max``: the
  busiest party's); ``peak_rss_mb``: the largest party process;
- ``auc``: held-out AUC (30 % test rows) of the secure model at the bank;
  ``auc_plaintext``: scikit-learn's LogisticRegression (C = 1 / l2) fitted on the
  same training rows in this run, on the pooled plaintext (the yardstick only;
  skipped with ``null`` above ``--plaintext-max-cells``); ``auc_bank_only``:
  the same on the bank's columns alone; ``auc_same_algorithm_plaintext``: the
  secure algorithm run on the pooled plaintext with an exact sigmoid.

Data: every party generates its own columns from a shared latent factor
(synthetic, seeded); the bank also the labels. The signal is spread over
the parties so a joint model beats a bank-only one. The run checks itself:
it fails if the secure AUC differs by more than 0.005 from the same algorithm
on pooled plaintext (the protocol must not lose accuracy; how close the
algorithm comes to scikit-learn's optimum is reported, not asserted, since
with few rows per feature both overfit differently).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from meshmpc_bench._common import (
    add_common,
    emit,
    model_run_fields,
    wan_fields,
    wan_profile,
)
from meshmpc_bench._ml_woe import plain_woe_coded, secure_woe

from meshmpc.ml.coded import CodedMatrix
from meshmpc.ml.logistic import LogisticConfig, plaintext_reference, split_roles, train
from meshmpc.ml.metrics import auc
from meshmpc.ml.step_data import raw_matrix
from meshmpc.ml.vertical import VerticalSession
from meshmpc.net import Context

LATENT = 6
PARTY_ORDER = ("bank", "gov", "fin", "telco")


def parse_features(text: str) -> dict[str, int]:
    out = {}
    for part in text.split(","):
        name, _, count = part.partition("=")
        out[name.strip()] = int(count)
    return out


COLUMN_BLOCK = 32
"""Columns generated at a time (a rows x 32 float64 temporary: 256 MB at 10^6 rows)."""


def party_columns(party: str, rows: int, width: int, seed: int,
                  dtype: Any = np.float64) -> np.ndarray:
    """This party's synthetic columns: loadings on the shared latent factors plus noise,
    standardised; column-major and made COLUMN_BLOCK columns at a time, so a float32
    10^6 x 500 matrix costs its 2 GB and no float64 copy."""
    latent = np.random.default_rng(seed).normal(size=(rows, LATENT))  # synthetic data only
    rng = np.random.default_rng([seed, PARTY_ORDER.index(party) + 1 if party in PARTY_ORDER
                                 else 99])
    strength = 0.15 if party == "bank" else 0.6  # the bank's own data is weak
    loadings = rng.normal(scale=strength, size=(LATENT, width))
    out = np.empty((rows, width), dtype=dtype, order="F")
    for lo in range(0, width, COLUMN_BLOCK):
        hi = min(lo + COLUMN_BLOCK, width)
        block = latent @ loadings[:, lo:hi] + rng.normal(size=(rows, hi - lo))
        out[:, lo:hi] = (block - block.mean(axis=0)) / block.std(axis=0)
    return out


def labels(rows: int, seed: int) -> np.ndarray:
    latent = np.random.default_rng(seed).normal(size=(rows, LATENT))
    rng = np.random.default_rng([seed, 0])
    z = latent @ rng.normal(scale=0.7, size=LATENT) - 2.2
    return (rng.random(rows) < 1 / (1 + np.exp(-z))).astype(np.float64)


REFERENCE_LABEL = "default_12m"
REFERENCE_OUTCOMES = ("credit_code", "default_12m", "days_overdue")


def reference_tables(rows: int, seed: int, folder: Path) -> dict[str, Path]:
    """The credit app's reference data, joined on credit_code in plaintext (data preparation
    standing in for psi.align), written as one file per party with its own columns."""
    from meshmpc_credit.datagen import generate
    from meshmpc_credit.plainmodel import joined_table

    generate(folder, rows, seed)
    joined = joined_table(folder)
    files = {}
    for party in PARTY_ORDER:
        prefix = f"{party}__"
        if party == "bank":
            names = [c for c in joined.column_names if "__" not in c
                     and c not in REFERENCE_OUTCOMES]
            table = joined.select([*names, REFERENCE_LABEL])
        else:
            names = [c for c in joined.column_names if c.startswith(prefix)]
            table = joined.select(names).rename_columns([n[len(prefix):] for n in names])
        files[party] = folder / f"{party}.joined.parquet"
        pq.write_table(table, files[party])
    return files


def reference_matrix(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A party's standardised / one-hot matrix (fitted on its own rows) and, at the bank,
    the labels."""
    table = pq.read_table(path)
    columns = [c for c in table.column_names if c != REFERENCE_LABEL]
    _, x, _ = raw_matrix(table, columns)
    y = table.column(REFERENCE_LABEL).to_numpy().astype(np.float64) \
        if REFERENCE_LABEL in table.column_names else None
    return x, y


async def party_job(ctx: Context, rows: int, widths: dict[str, int], epochs: int,
                    security: str, seed: int, batch_size: int | None,
                    triples: str, files: dict[str, str] | None = None,
                    woe_bins: int = 0, decay: float | None = None,
                    curvature: bool = True, schedule: str | None = None,
                    exact_l2: bool = True) -> dict[str, Any]:
    """One party: generate its columns (with ``woe_bins``: bin them by ml.binning into
    WOE features, timed apart), train, and (bank) evaluate on the test rows."""
    x: Any
    if files:
        x, y = reference_matrix(files[ctx.party])
        rows = x.shape[0]
    else:
        x = party_columns(ctx.party, rows, widths[ctx.party], seed,
                          np.float32 if woe_bins else np.float64)
        y = labels(rows, seed) if ctx.party == "bank" else None
    binning_s = None
    if woe_bins:
        await ctx.barrier("ml-logistic-woe")
        begin = time.perf_counter()
        x = await secure_woe(ctx, list(widths), x, y, woe_bins)
        binning_s = time.perf_counter() - begin
    roles = split_roles(rows, 0.3, 0.0, seed)
    config = LogisticConfig(epochs=epochs, batch_size=batch_size,
                            **decay_option(decay, curvature, schedule, exact_l2))
    await ctx.barrier("ml-logistic-start")
    before = ctx.traffic().bytes_sent
    start, cpu = time.perf_counter(), time.process_time()
    session = await VerticalSession.open(ctx.scope("lr"), "bank", security, triples=triples)
    result = await train(session, x, y, "bank", roles, config)
    wall = time.perf_counter() - start
    out: dict[str, Any] = {"wall": wall, "cpu": time.process_time() - cpu,
                           "sent": ctx.traffic().bytes_sent - before,
                           "compute": session.compute, "width": x.shape[1], "rows": rows,
                           "binning_s": binning_s}
    if ctx.party == "bank" and y is not None and result.scores_z is not None:
        test = roles == 2
        out["auc"] = auc(y[test], result.scores_z[test])
    return out


def decay_option(decay: float | None, curvature: bool = True,
                 schedule: str | None = None, exact_l2: bool = True) -> dict[str, Any]:
    """LogisticConfig's step options: ``decay`` and ``schedule`` when given (else its
    defaults), ``curvature`` and ``exact_l2``."""
    return {"curvature": curvature, "exact_l2": exact_l2,
            **({} if decay is None else {"decay": decay}),
            **({} if schedule is None else {"schedule": schedule})}


YARDSTICK_FLOAT64_CELLS = 2e8
"""Above this many cells scikit-learn gets float32 (its lbfgs keeps float32 input):
the 10^6 x 1,000 WOE training rows are 2.8 GB, not 5.6."""


def plaintext_aucs(rows: int, widths: dict[str, int], seed: int, config: LogisticConfig,
                   files: dict[str, str] | None = None,
                   woe_bins: int = 0) -> tuple[float, float, float]:
    """scikit-learn on the pooled rows (joint) and on the bank's columns (bank-only), and
    the secure algorithm itself run on the pooled plaintext (exact sigmoid). WOE blocks
    stay 1-byte codes (:class:`CodedMatrix`) and are decoded only for scikit-learn."""
    blocks: dict[str, Any]
    if files:
        blocks = {p: reference_matrix(files[p])[0] for p in files}
        y = reference_matrix(files["bank"])[1]
        assert y is not None
        rows = y.size
        if woe_bins:
            blocks = {p: plain_woe_coded(b, y, woe_bins) for p, b in blocks.items()}
    else:
        y = labels(rows, seed)
        dtype = np.float32 if woe_bins else np.float64
        # one party's float columns at a time: only its WOE codes are kept
        blocks = {p: plain_woe_coded(party_columns(p, rows, w, seed, dtype), y, woe_bins)
                  if woe_bins else party_columns(p, rows, w, seed) for p, w in widths.items()}
    roles = split_roles(rows, 0.3, 0.0, seed)
    pooled = CodedMatrix.hstack(list(blocks.values())) if woe_bins \
        else np.hstack(list(blocks.values()))
    joint = sklearn_auc(pooled, y, roles, config.l2)
    bank_only = sklearn_auc(blocks["bank"], y, roles, config.l2)
    w, b, _, _ = plaintext_reference(pooled, y, roles, config,
                                     [b.shape[1] for b in blocks.values()])
    test = roles == 2
    return joint, bank_only, auc(y[test], pooled[test] @ w + b)


def sklearn_auc(x: np.ndarray | CodedMatrix, y: np.ndarray, roles: np.ndarray,
                l2: float) -> float:
    """Held-out AUC of scikit-learn's LogisticRegression(C = 1 / l2) fitted on the training
    rows; a CodedMatrix is decoded (float32 above YARDSTICK_FLOAT64_CELLS) for it."""
    from sklearn.linear_model import LogisticRegression

    train_rows, test = roles == 0, roles == 2
    model = LogisticRegression(C=1.0 / l2, max_iter=1000)
    if isinstance(x, CodedMatrix):
        big = x.shape[0] * x.shape[1] > YARDSTICK_FLOAT64_CELLS
        dtype = np.float32 if big else np.float64
        model.fit(x.decode_rows(train_rows, dtype), y[train_rows])
        scores = model.decision_function(x.decode_rows(test, dtype))
    else:
        model.fit(x[train_rows], y[train_rows])
        scores = model.decision_function(x[test])
    return auc(y[test], scores)


def _add(parser: argparse.ArgumentParser, flag: str, **kwargs: Any) -> None:
    """Add an option unless the dispatcher (bench/ml.py) or a sibling already has it."""
    if flag not in parser._option_string_actions:
        parser.add_argument(flag, **kwargs)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options (``meshmpc bench ml`` adds --rows, --security, --json)."""
    _add(parser, "--features", default="bank=8,gov=120,fin=64,telco=29",
         help="party=count,...: columns per party")
    _add(parser, "--epochs", type=int, default=10)
    _add(parser, "--batch-size", type=int, default=None)
    _add(parser, "--decay", type=float, default=None,
         help="learning-rate decay per epoch (default: LogisticConfig's)")
    _add(parser, "--curvature", action=argparse.BooleanOptionalAction, default=True,
         help="scale the learning rate by the owners' announced curvature bound "
              "(LogisticConfig.curvature, on by default; wide correlated features diverge "
              "without)")
    _add(parser, "--schedule", choices=["cosine", "inverse"], default=None,
         help="learning-rate schedule (default: LogisticConfig's, cosine; inverse uses "
              "--decay)")
    _add(parser, "--exact-l2", action=argparse.BooleanOptionalAction, default=True,
         help="L2 on the original columns' weights (scikit-learn's objective; default) "
              "or on the standardised ones (--no-exact-l2, the old rule)")
    _add(parser, "--plaintext-only", action="store_true",
         help="only the yardsticks: scikit-learn and the same algorithm on the pooled "
              "plaintext (no parties, no mesh); for tuning the step rule")
    _add(parser, "--triples", choices=["ot", "dealer"], default="ot",
         help="semi2k correlations: ot (default) or dealer (insecure, benchmarks only)")
    _add(parser, "--seed", type=int, default=7)
    _add(parser, "--timeout", type=float, default=3600.0)
    _add(parser, "--plaintext-max-cells", type=float, default=None,
         help="skip the scikit-learn yardstick above this many cells (default 5e7, "
              "with --woe 2e9: WOE blocks stay 1-byte codes)")
    _add(parser, "--woe", action="store_true",
         help="train on WOE features: ml.binning first (quantile, --bins), timed apart "
              "(binning_s); scikit-learn gets the same WOE features")
    _add(parser, "--bins", type=int, default=10)
    _add(parser, "--data", choices=["synthetic", "reference"], default="synthetic",
         help="synthetic latent-factor columns (--features), or the credit app's reference "
              "data (meshmpc-credit datagen, --rows per party, joined on credit_code)")


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Entry point of ``meshmpc bench ml --op logistic``."""
    return [run_logistic(args)]


def run_logistic(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark and return its JSON record."""
    widths = parse_features(args.features)
    with tempfile.TemporaryDirectory(prefix="ml-logistic-") as tmp:
        files = None
        if args.data == "reference":
            files = {p: str(f) for p, f in reference_tables(args.rows, args.seed,
                                                             Path(tmp)).items()}
            widths = {p: 0 for p in PARTY_ORDER}
        return _measure(args, widths, files)


def _measure(args: argparse.Namespace, widths: dict[str, int],
             files: dict[str, str] | None) -> dict[str, Any]:
    from meshmpc.net.launch import run_local

    parties = list(widths)
    kwargs = {"rows": args.rows, "widths": widths, "epochs": args.epochs,
              "security": args.security, "seed": args.seed, "batch_size": args.batch_size,
              "triples": args.triples, "files": files,
              "woe_bins": args.bins if args.woe else 0, "decay": args.decay,
              "curvature": args.curvature, "schedule": args.schedule,
              "exact_l2": args.exact_l2}
    if args.plaintext_only:
        return _plaintext_only(args, widths, files, kwargs)
    runs = []
    for _ in range(args.repeats):
        runs.append(run_local(parties, "meshmpc_bench.ml_logistic:party_job", kwargs,
                              wan=wan_profile(args), timeout=args.timeout, pin_cpus=True))
    widths = {p: int(runs[-1][p]["width"]) for p in parties}
    rows = int(runs[-1]["bank"]["rows"])
    record: dict[str, Any] = {
        "bench": "ml.logistic", "security": args.security, "rows": rows, "data": args.data,
        "features": widths, "parties": len(parties), "epochs": args.epochs,
        "inputs": "woe" if args.woe else "standardised", "load": _load(),
        "batch_size": args.batch_size, "decay": args.decay, "curvature": args.curvature,
        "schedule": args.schedule or LogisticConfig().schedule, "exact_l2": args.exact_l2,
        "binning_s": _binning_s(runs, parties),
        **model_run_fields(runs, parties), "triples": args.triples, **wan_fields(args),
        "per_party": {p: {"cpu_s": round(runs[-1][p]["cpu"], 1),
                          "sent_mb": round(runs[-1][p]["sent"] / 1e6, 1)} for p in parties},
    }
    limit = args.plaintext_max_cells if args.plaintext_max_cells is not None \
        else (2e9 if args.woe else 5e7)
    if rows * sum(widths.values()) <= limit:
        begin = time.perf_counter()
        joint, bank_only, same = plaintext_aucs(rows, widths, args.seed, _config(args), files,
                                                kwargs["woe_bins"])
        record.update({"auc_plaintext": round(joint, 4), "auc_bank_only": round(bank_only, 4),
                       "auc_margin_vs_bank_only": round(record["auc"] - bank_only, 4),
                       "auc_minus_plaintext": round(record["auc"] - joint, 4),
                       "auc_same_algorithm_plaintext": round(same, 4),
                       "plaintext_s": round(time.perf_counter() - begin, 1)})
        if abs(record["auc"] - same) > 0.005:
            raise SystemExit(f"ml.logistic: secure AUC {record['auc']} differs from the same "
                             f"algorithm on pooled plaintext ({same:.4f}) by more than 0.005")
    else:
        record["auc_plaintext"] = None
    return record


def _config(args: argparse.Namespace) -> LogisticConfig:
    return LogisticConfig(epochs=args.epochs, batch_size=args.batch_size,
                          **decay_option(args.decay, args.curvature, args.schedule,
                                         args.exact_l2))


def _plaintext_only(args: argparse.Namespace, widths: dict[str, int],
                    files: dict[str, str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The yardsticks alone (``--plaintext-only``): scikit-learn and the secure algorithm
    on the same pooled plaintext rows, and their AUC difference."""
    begin = time.perf_counter()
    joint, bank_only, same = plaintext_aucs(args.rows, widths, args.seed, _config(args), files,
                                            kwargs["woe_bins"])
    return {"bench": "ml.logistic.plaintext", "rows": args.rows, "features": widths,
            "epochs": args.epochs, "inputs": "woe" if args.woe else "standardised",
            "batch_size": args.batch_size, "curvature": args.curvature,
            "schedule": args.schedule or LogisticConfig().schedule, "decay": args.decay,
            "exact_l2": args.exact_l2, "auc_plaintext": round(joint, 4),
            "auc_bank_only": round(bank_only, 4), "auc_same_algorithm_plaintext": round(same, 4),
            "same_minus_plaintext": round(same - joint, 4),
            "wall_s": round(time.perf_counter() - begin, 1), "load": _load()}


def _binning_s(runs: list[dict[str, Any]], parties: list[str]) -> float | None:
    """The slowest party's WOE binning time (median over runs), None without --woe."""
    values = [max(r[p]["binning_s"] for p in parties) for r in runs
              if r[parties[0]].get("binning_s") is not None]
    return round(float(np.median(values)), 3) if values else None


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="meshmpc bench ml_logistic", description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--security", choices=["dishonest-majority", "honest-majority"],
                        default="dishonest-majority")
    add_arguments(parser)
    add_common(parser)
    parser.set_defaults(repeats=1)
    args = parser.parse_args(argv)
    emit(run_logistic(args), args.json)
    return 0
