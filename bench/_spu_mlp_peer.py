"""The same MLP epoch in SecretFlow SPU (ABY3 simulator), run by ``--compare-spu PYTHON``.

Runs under the peer venv's interpreter (it holds ``spu`` and ``jax``; meshmpc is
not importable there and ``spu`` is never a dependency of ours). Reads an
``.npz`` written by bench/ml_mlp.py (pooled standardised rows, labels, the
training order, the initial weights), trains one epoch of the same network
(ReLU layers, sigmoid output, cross-entropy, SGD with momentum in the same
M-unit form, L2) with every step compiled to SPU and run in its 3-party ABY3
simulator (all parties as threads of one process, in-memory links: no
network, no encryption), and prints one JSON line {"spu_wall_s", "spu_auc"}.
The simulator takes plaintext inputs and returns plaintext outputs per call,
so the weights pass in and out of SPU at every step (16k numbers: small next
to the batch). One warm-up step (compilation) runs before the clock.
usage: PYTHON spu_mlp_peer.py DATA.npz
"""

import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import spu.libspu as libspu
import spu.utils.simulation as pps


def main(path: str) -> None:
    data = np.load(path)
    x, y, order = data["x"].astype(np.float32), data["y"].astype(np.float32), data["order"]
    n_train, batch = int(data["n_train"]), int(data["batch"])
    lr, mu, l2 = float(data["lr"]), float(data["momentum"]), float(data["l2"])
    count = int(data["layers"])
    weights = [data[f"w{k}"].astype(np.float32) for k in range(count)]
    biases = [np.zeros(w.shape[1], dtype=np.float32) for w in weights]
    params = (*weights, *biases)
    velocity = tuple(np.zeros_like(p) for p in params)

    def loss(p, xb, yb):
        a = xb
        for k in range(count - 1):
            a = jax.nn.relu(a @ p[k] + p[count + k])
        z = (a @ p[count - 1] + p[2 * count - 1]).reshape(-1)
        return jnp.sum(jnp.logaddexp(0.0, z) - yb * z)

    def step(p, v, xb, yb, up):
        grads = jax.grad(loss)(p, xb, yb)
        new_p, new_v = [], []
        for k, (pk, vk, gk) in enumerate(zip(p, v, grads, strict=True)):
            g = (gk + (l2 * pk if k < count else 0.0)) * up
            vk = mu * vk + g
            new_v.append(vk)
            new_p.append(pk - (lr / batch) * vk)
        return tuple(new_p), tuple(new_v)

    sim = pps.Simulator.simple(3, libspu.ProtocolKind.ABY3, libspu.FieldType.FM64)
    secure_step = pps.sim_jax(sim, step)
    xs, ys = x[order], y[order]
    secure_step(params, velocity, xs[:batch], ys[:batch], np.float32(1.0))  # compile, warm
    start = time.time()
    for lo in range(0, n_train, batch):
        hi = min(lo + batch, n_train)
        up = np.float32(batch / (hi - lo))
        params, velocity = secure_step(params, velocity, xs[lo:hi], ys[lo:hi], up)
    wall = time.time() - start
    test = data["test"]
    a = x[test]
    for k in range(count - 1):
        a = np.maximum(a @ params[k] + params[count + k], 0.0)
    z = (a @ params[count - 1] + params[2 * count - 1]).ravel()
    record = {"spu_wall_s": round(wall, 3), "spu_auc": round(_auc(y[test], z), 4)}
    print(json.dumps(record), flush=True)


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    ranks = np.empty(s.size)
    ranks[np.argsort(s, kind="stable")] = np.arange(1, s.size + 1)
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / max(n_pos * n_neg, 1))


if __name__ == "__main__":
    main(sys.argv[1])
