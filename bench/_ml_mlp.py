"""Vertical MLP benchmark: ``meshmpc bench ml --op mlp --rows N --features ... --layers 64,32``.

Parties are separate processes over the encrypted mesh on loopback (pinned
to cores as separate machines would be). Prints ``{"bench": "ml.mlp",
"security", "rows", "features", "layers", "epochs", "wall_s", "cpu_s",
"bytes_sent", "auc", "auc_plaintext", "auc_sklearn", ...}``:

- ``wall_s``: the slowest party's time from session set-up to the bank holding
  the logits of every row (training ``--epochs`` and scoring all rows);
  ``cpu_s``: CPU seconds of all party
  processes; ``load``: /proc/loadavg before and after (the machine is shared);
- ``bytes_sent``: all parties' bytes in that time (``bytes_sent_max``: the busiest);
- ``auc``: held-out AUC (30 % test rows) of the secure network at the bank;
  ``auc_plaintext``: the same network and algorithm (same layers, optimiser,
  batch order, epochs, initialisation distribution) trained in float64 numpy
  on the pooled rows; ``auc_sklearn``: scikit-learn's MLPClassifier with the
  same layers, solver ("sgd" with plain momentum, or "adam"), learning rate,
  alpha = l2, batch size and epochs. ``result_ok`` is false (and the command
  exits with status 1) if ``auc`` is more than 0.01 below ``auc_plaintext``;
- ``--compare-spu PYTHON``: ``spu_wall_s`` and ``spu_auc`` of the same epoch (same rows,
  initial weights, batch order) in SecretFlow SPU's ABY3 simulator (bench/_spu_mlp_peer.py:
  three parties as threads, no network), and ``spu_over_meshmpc`` = spu_wall_s / wall_s
  (SPU's figure covers training only, ours training plus scoring every row).

Data: the latent-factor columns of bench/ml_logistic.py, labels through a
non-linear link (an interaction of two latent factors) so depth can help.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from typing import Any

import numpy as np
from meshmpc_bench._common import model_run_fields, wan_fields, wan_profile
from meshmpc_bench.ml_logistic import LATENT, _add, parse_features, party_columns

from meshmpc.ml.logistic import make_layout, split_roles
from meshmpc.ml.metrics import auc
from meshmpc.ml.mlp import (
    MLPConfig,
    parse_layers,
    reference_init,
    reference_train,
    standardise_stats,
)
from meshmpc.ml.mlp_secure import train
from meshmpc.ml.vertical import VerticalSession
from meshmpc.net import Context


def mlp_labels(rows: int, seed: int) -> np.ndarray:
    """Labels from the shared latent factors through a non-linear link (synthetic)."""
    latent = np.random.default_rng(seed).normal(size=(rows, LATENT))
    rng = np.random.default_rng([seed, 0])
    z = latent @ rng.normal(scale=0.6, size=LATENT) + 0.8 * latent[:, 0] * latent[:, 1] - 2.0
    return (rng.random(rows) < 1 / (1 + np.exp(-z))).astype(np.float64)


def _config(args: argparse.Namespace, init_seed: bytes | None = None) -> MLPConfig:
    return MLPConfig(layers=parse_layers(args.layers), epochs=args.epochs,
                     batch_size=args.mlp_batch_size, optimizer=args.optimizer,
                     learning_rate=args.learning_rate, l2=args.l2, init_seed=init_seed)


async def party_job(ctx: Context, rows: int, widths: dict[str, int], security: str,
                    seed: int, triples: str, config: dict[str, Any]) -> dict[str, Any]:
    """One party: its columns, training, (bank) the held-out AUC."""
    x = party_columns(ctx.party, rows, widths[ctx.party], seed)
    y = mlp_labels(rows, seed) if ctx.party == "bank" else None
    roles = split_roles(rows, 0.3, 0.0, seed)
    cfg = MLPConfig(**config)
    await ctx.barrier("ml-mlp-start")
    before, start = ctx.traffic().bytes_sent, time.perf_counter()
    cpu = time.process_time()
    session = await VerticalSession.open(ctx.scope("mlp"), "bank", security, triples=triples)
    result = await train(session, x, y, "bank", roles, cfg)
    out: dict[str, Any] = {"wall": time.perf_counter() - start,
                           "cpu": time.process_time() - cpu,
                           "sent": ctx.traffic().bytes_sent - before,
                           "compute": session.compute}
    if ctx.party == "bank" and y is not None and result.scores_z is not None:
        test = roles == 2
        out["auc"] = auc(y[test], result.scores_z[test])
    return out


def pooled_rows(args: argparse.Namespace, widths: dict[str, int]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every party's standardised columns side by side, the labels, the roles (yardsticks)."""
    rows, seed = args.rows, args.seed
    y = mlp_labels(rows, seed)
    roles = split_roles(rows, 0.3, 0.0, seed)
    blocks = []
    for party, width in widths.items():
        x = party_columns(party, rows, width, seed)
        mean, scale = standardise_stats(x[roles == 0])
        blocks.append((x - mean) / scale)
    return np.hstack(blocks), y, roles


def compare_spu(args: argparse.Namespace, widths: dict[str, int]) -> dict[str, Any]:
    """The same epoch in SPU's ABY3 simulator under ``args.compare_spu``
    (bench/_spu_mlp_peer.py)."""
    import subprocess
    import tempfile
    from pathlib import Path

    pooled, y, roles = pooled_rows(args, widths)
    config = _config(args, init_seed=reference_seed(args))
    init = reference_init(config, pooled.shape[1], 3)
    layout = make_layout(roles, config.seed)
    with tempfile.TemporaryDirectory(prefix="ml-mlp-spu-") as tmp:
        path = Path(tmp) / "mlp.npz"
        arrays: dict[str, Any] = {f"w{k}": w for k, w in enumerate(init)}
        arrays.update(x=pooled, y=y, order=layout.order, n_train=layout.n_train,
                      batch=config.batch_size, lr=config.learning_rate,
                      momentum=config.momentum, l2=config.l2, layers=len(init),
                      test=np.flatnonzero(roles == 2))
        np.savez(path, **arrays)
        script = Path(__file__).with_name("_spu_mlp_peer.py")
        done = subprocess.run([args.compare_spu, str(script), str(path)], capture_output=True,
                              text=True, timeout=args.timeout, check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode or not lines:
        return {"spu_error": (done.stderr or done.stdout).strip()[-400:]}
    import json

    return dict(json.loads(lines[-1]))


def reference_seed(args: argparse.Namespace) -> bytes:
    """The public initialisation seed of the float yardstick (and of --same-init runs)."""
    return int(args.seed).to_bytes(16, "little")


def plaintext_aucs(args: argparse.Namespace, widths: dict[str, int], compute: int
                   ) -> tuple[float, float]:
    """(the same algorithm in float64, scikit-learn's MLPClassifier) held-out AUCs."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    pooled, y, roles = pooled_rows(args, widths)
    config = _config(args, init_seed=reference_seed(args))
    init = reference_init(config, pooled.shape[1], compute)
    model = reference_train(pooled, y, make_layout(roles, config.seed), config, init)
    train_rows, test = roles == 0, roles == 2
    ours = auc(y[test], model.forward(pooled[test]))
    sk = MLPClassifier(hidden_layer_sizes=config.layers, solver=config.optimizer,
                       learning_rate_init=config.learning_rate, alpha=config.l2,
                       batch_size=config.batch_size, max_iter=config.epochs,
                       momentum=config.momentum, nesterovs_momentum=False,
                       random_state=args.seed, shuffle=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk.fit(pooled[train_rows], y[train_rows])
    return ours, auc(y[test], sk.predict_proba(pooled[test])[:, 1])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options (``meshmpc bench ml`` adds --rows, --security, --json)."""
    _add(parser, "--features", default="bank=8,gov=120,fin=64,telco=29",
         help="party=count,...: columns per party")
    _add(parser, "--epochs", type=int, default=10)
    _add(parser, "--triples", choices=["ot", "he", "dealer"], default="ot",
         help="semi2k correlations: ot (default), he (OT, matrix triples by packed BFV "
              "products) or dealer (insecure, benchmarks only)")
    triples = parser._option_string_actions["--triples"]
    if triples.choices is not None and "he" not in triples.choices:  # a sibling added it
        triples.choices = [*triples.choices, "he"]
    _add(parser, "--seed", type=int, default=7)
    _add(parser, "--timeout", type=float, default=3600.0)
    _add(parser, "--layers", default="64,32", help="mlp: hidden-layer widths")
    _add(parser, "--optimizer", choices=["sgd", "adam"], default="sgd", help="mlp optimiser")
    _add(parser, "--learning-rate", type=float, default=0.05, help="mlp learning rate")
    _add(parser, "--l2", type=float, default=1e-4, help="mlp L2 (scikit-learn's alpha)")
    _add(parser, "--mlp-batch-size", type=int, default=256, help="mlp rows per step")
    _add(parser, "--compare-spu", default=None, metavar="PYTHON",
         help="mlp: also run the same epoch in SecretFlow SPU (ABY3 simulator) under this "
              "interpreter (a separate venv holding spu)")
    _add(parser, "--same-init", action="store_true",
         help="mlp: start the secure run from the float yardstick's initial weights (a public "
              "seed: benchmark only) so that auc - auc_plaintext measures the fixed-point "
              "error alone, not the initialisation lottery")
    _add(parser, "--layer-costs", action="store_true",
         help="mlp: bytes and rounds of each phase of one step instead of the training run")


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Entry point of ``meshmpc bench ml --op mlp``."""
    from meshmpc.net.launch import run_local

    if args.layer_costs:
        return layer_costs(args)
    widths = parse_features(args.features)
    parties = list(widths)
    config = _config(args, init_seed=reference_seed(args) if args.same_init else None)
    kwargs = {"rows": args.rows, "widths": widths, "security": args.security,
              "seed": args.seed, "triples": args.triples,
              "config": {k: getattr(config, k) for k in
                         ("layers", "epochs", "batch_size", "optimizer", "learning_rate",
                          "l2", "init_seed")}}
    load_before = os.getloadavg()
    runs = [run_local(parties, "meshmpc_bench._ml_mlp:party_job", kwargs, wan=wan_profile(args),
                      timeout=args.timeout, pin_cpus=True) for _ in range(args.repeats)]
    load_after = os.getloadavg()
    record: dict[str, Any] = {
        "bench": "ml.mlp", "security": args.security, "rows": args.rows, "features": widths,
        "layers": list(config.layers), "epochs": args.epochs, "optimizer": config.optimizer,
        "batch_size": config.batch_size, "parties": len(parties),
        "same_init": bool(args.same_init),
        **model_run_fields(runs, parties), "triples": args.triples,
        "load": [round(v, 2) for v in (*load_before, *load_after)], **wan_fields(args),
    }
    ours, sk = plaintext_aucs(args, widths, len(record["compute_parties"]))
    record.update({"auc_plaintext": round(ours, 4), "auc_sklearn": round(sk, 4)})
    if args.compare_spu:
        record.update(compare_spu(args, widths))
        if "spu_wall_s" in record:
            record["spu_over_meshmpc"] = round(record["spu_wall_s"] / record["wall_s"], 3)
    # bench/ml.py exits with status 1 (after printing the line) when this is False
    record["result_ok"] = record["auc"] >= ours - 0.01
    record["max_error"] = round(ours - record["auc"], 4)
    return [record]


# --- per-layer costs (protocols/mlp.md) ------------------------------------------------
PHASES = ("first layer X_o W1_o", "ReLU + derivative", "hidden dense a W", "sigmoid output",
          "backward dense", "backward first layer X_o^T delta", "optimiser step")


async def _phase_costs(ctx: Context, security: str, widths: dict[str, int], rows: int,
                       config: dict[str, Any], triples: str = "dealer") -> dict[str, Any]:
    """One training step of ``rows`` rows: the bytes each phase sends from this party and
    its seconds (parties in one process: the compute parties' work adds up)."""
    from meshmpc.ml.mlp_provider import ProviderProducts, provider_product_applies, serve
    from meshmpc.ml.mlp_relu import times_mask
    from meshmpc.ml.mlp_secure import MLPNetwork, Optimizer, initial_parameters
    from meshmpc.mpc.fixedpoint import FixedPoint

    cfg = MLPConfig(**config)
    session = await VerticalSession.open(ctx.scope("probe"), "bank", security,
                                         triples=triples)
    x = np.random.default_rng(1).normal(size=(rows, widths[ctx.party]))  # synthetic
    remote = provider_product_applies(session)
    providers = [o for o in widths if remote and o not in session.compute]
    for owner, width in widths.items():
        if owner not in providers:
            await session.register(owner, x if owner == ctx.party else None, (rows, width))
    if ctx.party in providers:
        await serve(session, x, FixedPoint().f)
    if not session.computes:
        return {}
    net = MLPNetwork(session, widths, x, cfg)
    if providers:
        net.remote = ProviderProducts(session, providers)
        await net.remote.setup()
    theta = await initial_parameters(session, net.params, cfg)
    y = await session.require_backend().input(
        "bank", np.zeros(rows) if ctx.party == "bank" else None, shape=(rows,))
    costs = dict.fromkeys(PHASES, 0)
    seconds = dict.fromkeys(PHASES, 0.0)

    async def timed(phase: str, coro: Any) -> Any:
        before, start = ctx.traffic().bytes_sent, time.perf_counter()
        value = await coro
        costs[phase] += ctx.traffic().bytes_sent - before
        seconds[phase] += time.perf_counter() - start
        return value

    rows_slice = slice(0, rows)
    h = await timed(PHASES[0], net.first_layer(theta, rows_slice))
    acts, masks = [], []
    for k in range(1, len(net.params.shapes)):
        a, d = await timed(PHASES[1], net.relu(h))
        acts.append(a)
        masks.append(d)
        h = await timed(PHASES[2] if k < len(net.params.shapes) - 1 else PHASES[3],
                        net.matmul(a, net.params.weight(theta, k)))
    delta = (await timed(PHASES[3], h.sigmoid(cfg.sigmoid))) - y.reshape(-1, 1)
    output_delta = delta
    for k in range(len(net.params.shapes) - 1, 0, -1):
        await timed(PHASES[4], net.matmul(acts[k - 1].T, delta))
        back = await timed(PHASES[4], net.matmul(delta, net.params.weight(theta, k).T))
        delta = await timed(PHASES[4], times_mask(masks[k - 1], back))
    await timed(PHASES[5], net.first_layer_gradient(delta, rows_slice))
    flat = await net.gradient(theta, acts, masks, output_delta, rows_slice)
    await timed(PHASES[6], Optimizer(net.backend, net.params, cfg).step(theta, flat, rows))
    if net.remote is not None:
        await net.remote.close()
    return {"costs": costs, "seconds": seconds}


def layer_costs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Per-phase bytes sent and seconds of one step (parties in one process; semi2k takes
    ``--triples``: dealer leaves the cost of triples out, ot or he include it). Rounds are
    not reported: the in-memory mesh does not count flights the way the TCP mesh does
    (protocols/mlp.md derives them)."""
    from meshmpc.net.memory import run_parties

    widths = parse_features(args.features)
    config = _config(args)
    kwargs = {k: getattr(config, k) for k in ("layers", "batch_size", "optimizer",
                                              "learning_rate", "l2")}
    triples = "dealer" if args.security == "honest-majority" else args.triples
    out = run_parties(list(widths), _phase_costs, args.security, widths,
                      config.batch_size, kwargs, triples)
    records = []
    for phase in PHASES:
        per = [out[p]["costs"][phase] for p in out if out[p]]
        records.append({"bench": "ml.mlp.phase", "security": args.security, "phase": phase,
                        "rows": config.batch_size, "layers": list(config.layers),
                        "triples": triples, "bytes_sent_all": int(sum(per)),
                        "seconds": round(max(out[p]["seconds"][phase] for p in out
                                             if out[p]), 2)})
    return records
