"""SecureBoost over the mesh: the bank (label holder) and its partners (feature owners).

Protocol per tree (Cheng et al., "SecureBoost: a lossless federated learning
framework", IEEE Intelligent Systems 2021; packing and histogram subtraction as
in SecureBoost+, arXiv 2110.10927); see protocols/secureboost.md:

1. The bank computes gradients and hessians, packs each row's (g, h) into one
   plaintext and encrypts it with its own key (Okamoto–Uchiyama by default);
   every partner gets the ciphertexts of the tree's sampled rows.
2. Per level the bank sends the node of every row (the instance spaces) and,
   per node, whether to sum it or derive it as parent minus sibling. A
   partner sums ciphertexts per (feature, bin) in C, turns bins into
   cumulative "x <= edge" candidates, shuffles them, packs several per
   ciphertext, re-randomises and returns them.
3. The bank decrypts, finds the best gain over its own (clear) candidates and
   every partner's; for a partner's winner it sends the anonymous candidate
   index; the partner alone maps it to (feature, threshold), stores it as a
   record and returns the left mask of the node's rows.

Nothing received is trusted for sizes: ciphertext arrays are checked against
the row counts this party knows, candidate indices against what it sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np

from meshmpc.crypto.he import Ciphertexts, generate, public_key_from_dict
from meshmpc.crypto.he.packing import GHPacking
from meshmpc.ml.boost_core import (
    BoostParams,
    NodePlan,
    apply_edges,
    bin_matrix,
    random_permutation,
)
from meshmpc.ml.boost_train import (
    Boosted,
    LocalSource,
    choose_features,
    grow_tree,
    objective_of,
    sample_rows,
    tree_leaves,
    validation_split,
)
from meshmpc.net import Context


class BoostProtocolError(ValueError):
    """A peer sent something the protocol does not allow (names the party and step)."""


CT_CHUNK_ROWS = 8192
"""Rows of (g, h) per encrypted chunk sent to the partners (2 MB of OU ciphertexts)."""


class BankCrypto:
    """The bank's key and this tree's encrypted, packed (g, h) rows (shared by partners)."""

    def __init__(self, p: BoostParams, n_rows: int):
        self.sk = generate(p.scheme, p.key_bits, allow_insecure=p.insecure_test_key)
        self.modulus = self.sk.plain_modulus
        self.p, self.n_rows = p, n_rows
        self.packing: GHPacking | None = None
        self.plain = np.zeros((0, 1), np.uint64)

    def new_tree(self, g: np.ndarray, h: np.ndarray, sample: np.ndarray,
                 g_bound: float, h_bound: float) -> None:
        rows = np.nonzero(sample)[0]
        self.packing = GHPacking(self.p.frac_bits, g_bound, h_bound, max(1, rows.size),
                                 self.sk.public.plain_bits)
        self.rows = rows
        self.plain = self.packing.encode(g[rows], h[rows], self.modulus)

    @property
    def chunks(self) -> int:
        """Ciphertext messages this tree (at least one, possibly empty)."""
        return max(1, -(-self.rows.size // CT_CHUNK_ROWS))

    async def send_ciphertexts(self, ctx: Context, partners: list[str]) -> None:
        """Encrypt the tree's rows chunk by chunk in a worker thread and send each chunk
        to every partner while the next one is encrypted: on a slow link the transfer
        hides behind the encryption (the C kernels release the GIL, so the event loop
        keeps the links busy meanwhile). Same ciphertexts, same bytes as one message."""
        parts = np.array_split(self.plain, self.chunks)
        pending = asyncio.ensure_future(asyncio.to_thread(self.sk.encrypt, parts[0]))
        try:
            for i in range(len(parts)):
                cts = await pending
                if i + 1 < len(parts):
                    pending = asyncio.ensure_future(asyncio.to_thread(self.sk.encrypt,
                                                                      parts[i + 1]))
                await asyncio.gather(*(ctx.send(q, "ct", cts.data) for q in partners))
        finally:
            pending.cancel()  # a failed send leaves no encryption result unread

    def decode(self, data: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        assert self.packing is not None
        plain = self.sk.decrypt(self.sk.public.wrap(data))
        return self.packing.decode(plain, self.modulus, count)


class PartnerSource:
    """The bank's view of one partner: a candidate source over the mesh."""

    def __init__(self, ctx: Context, party: str, crypto: BankCrypto, n_features: int):
        self.ctx, self.party, self.crypto = ctx, party, crypto
        self._n_features = n_features
        self._sums: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def n_features(self) -> int:
        return self._n_features

    async def begin_tree(self, g: np.ndarray, h: np.ndarray, sample: np.ndarray,
                         features: np.ndarray | None) -> None:
        """The tree's parameters and rows; the ciphertexts follow in ``c.chunks``
        messages (:meth:`BankCrypto.send_ciphertexts`)."""
        c = self.crypto
        assert c.packing is not None
        meta = {"op": "tree", "slot": c.packing.slot_bits, "k": c.packing.per_plaintext,
                "features": None if features is None else features.tolist(),
                "chunks": c.chunks}
        await self.ctx.send(self.party, "cmd", meta)
        await self.ctx.send(self.party, "rows", c.rows.astype(np.int64))

    async def candidates(self, assign: np.ndarray, plans: list[NodePlan]
                         ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Direct nodes from the partner; their siblings here, as parent minus sibling."""
        direct = [q.node for q in plans if q.direct]
        await self.ctx.send(self.party, "cmd", {"op": "level", "nodes": direct})
        await self.ctx.send(self.party, "assign", assign)
        counts = await self.ctx.recv(self.party, "counts")
        data = await self.ctx.recv(self.party, "cand")
        k = self.crypto.packing.per_plaintext if self.crypto.packing else 1
        if len(counts) != len(direct) or len(set(counts)) > 1 or any(
                not 0 <= int(c) <= 1 << 24 for c in counts):
            raise BoostProtocolError(f"ml.boost: party {self.party} sent a bad candidate list")
        need = sum(-(-int(c) // k) for c in counts)
        if data.shape[0] != need:
            raise BoostProtocolError(f"ml.boost: party {self.party} sent {data.shape[0]} "
                                     f"ciphertexts, expected {need}")
        at = 0
        for node, count in zip(direct, counts, strict=True):
            m = -(-int(count) // k)
            self._sums[node] = self.crypto.decode(data[at:at + m], int(count))
            at += m
        for q in plans:
            if not q.direct:
                (pg, ph), (sg, sh) = self._sums[q.parent], self._sums[q.sibling]
                self._sums[q.node] = (pg - sg, ph - sh)
        return {q.node: self._sums[q.node] for q in plans}

    async def split(self, assign: np.ndarray, chosen: dict[int, int]
                    ) -> dict[int, tuple[np.ndarray, int]]:
        await self.ctx.send(self.party, "cmd", {"op": "split",
                                                "chosen": [[n, c] for n, c in chosen.items()]})
        reply = await self.ctx.recv(self.party, "masks")
        out = {}
        for (node, _), rec, bits in zip(chosen.items(), reply["records"], reply["masks"],
                                        strict=True):
            n = int(np.count_nonzero(assign == node))
            mask = np.unpackbits(np.asarray(bits, dtype=np.uint8), count=n).astype(bool)
            out[node] = (mask, int(rec))
        return out

    async def end_tree(self) -> None:
        self._sums.clear()
        await self.ctx.send(self.party, "cmd", {"op": "end_tree"})


# ---- the bank ------------------------------------------------------------------

async def train_bank(ctx: Context, x: np.ndarray, y: np.ndarray, partners: list[str],
                     p: BoostParams, names: list[str] | None = None,
                     on_tree: Callable[[int, float], None] | None = None) -> dict[str, Any]:
    """Train at the label holder; returns the bank's model (trees, own split table).

    ``on_tree(t, seconds)`` is called after every tree (progress reporting).
    """
    p.check()
    n = y.shape[0]
    bins, edges = bin_matrix(x, p.bins)
    crypto = BankCrypto(p, n)
    await ctx.broadcast("cmd", {"op": "key", "pk": crypto.sk.public.to_dict(),
                                "params": asdict(p), "rows": n})
    nf = {q: await ctx.recv(q, "features") for q in partners}
    own = LocalSource(ctx.party, bins, p.bins)
    sources: list[Any] = [own] + [PartnerSource(ctx, q, crypto, int(nf[q])) for q in partners]
    obj = objective_of(p)
    train = validation_split(n, p)
    model = Boosted(obj.base(y[train]), p.objective, p.learning_rate)
    margin = np.full(n, model.base)
    best, best_at = np.inf, 0
    for t in range(p.trees):
        started = time.perf_counter()
        g, h = obj.grad_hess(margin, y)
        sample, g, h = sample_rows(g, h, train, p)
        g_bound = obj.g_bound or float(np.abs(g[sample]).max() + 1e-9)
        crypto.new_tree(g, h, sample, g_bound * _goss_factor(p), obj.h_bound * _goss_factor(p))
        for s in sources:
            await s.begin_tree(g, h, sample, choose_features(s.n_features(), p))
        await crypto.send_ciphertexts(ctx, partners)
        tree, leaves = await grow_tree(sources, g, h, sample, p)
        model.trees.append(tree)
        margin += np.array(tree.value)[leaves]
        if on_tree is not None:
            on_tree(t, time.perf_counter() - started)
        if p.validation > 0:
            loss = _loss(p.objective, margin[~train], y[~train])
            model.history.append(loss)
            if loss < best - 1e-12:
                best, best_at = loss, len(model.trees)
            elif p.early_stopping and len(model.trees) - best_at >= p.early_stopping:
                break
    if p.validation > 0 and p.early_stopping:
        model.trees = model.trees[:best_at]
    used = {q: sorted({r for t in model.trees for o, r in zip(t.owner, t.split, strict=True)
                       if o == q}) for q in partners}
    imp = model.importance()
    for q in partners:
        mine = {str(r): v for r, v in imp.get(q, {}).items()}
        await ctx.send(q, "cmd", {"op": "done", "used": used[q], "importance": mine})
    return {"role": "bank", "params": asdict(p), "boosted": model.to_dict(),
            "features": names or [f"x{j}" for j in range(x.shape[1])],
            "edges": [e.tolist() for e in edges], "records": [list(r) for r in own.records],
            "importance": _own_importance(imp.get(ctx.party, {}), own.records,
                                          names or [f"x{j}" for j in range(x.shape[1])]),
            "margin": margin.tolist()}


def _own_importance(imp: dict[int, dict[str, float]], records: list[tuple[int, int]],
                    names: list[str]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for rid, v in imp.items():
        e = out.setdefault(names[records[rid][0]], {"gain": 0.0, "splits": 0})
        e["gain"] += v["gain"]
        e["splits"] += int(v["splits"])
    return out


def _goss_factor(p: BoostParams) -> float:
    return 1.0 if p.goss is None else max(1.0, (1 - p.goss[0]) / p.goss[1])


def _loss(objective: str, margin: np.ndarray, y: np.ndarray) -> float:
    if objective == "logistic":
        return float(np.mean(np.logaddexp(0, margin) - y * margin))
    return float(np.mean((margin - y) ** 2))


# ---- a partner -------------------------------------------------------------------

class PartnerState:
    """A partner's side of training: its bins, the bank's key, the tree's histograms."""

    def __init__(self, x: np.ndarray, bank: str):
        self.x, self.bank = x, bank
        self.records: list[tuple[int, int]] = []

    def setup(self, msg: dict[str, Any]) -> None:
        self.p = BoostParams(**{**msg["params"], "goss": msg["params"].get("goss")})
        if int(msg["rows"]) != self.x.shape[0]:
            raise BoostProtocolError(f"ml.boost: the bank has {msg['rows']} aligned rows, "
                                     f"this party {self.x.shape[0]}: re-run the alignment")
        self.pk = public_key_from_dict(msg["pk"])
        self.bins, self.edges = bin_matrix(self.x, self.p.bins)
        self.per_feature = np.minimum(self.bins.max(axis=1).astype(np.int64) + 1, self.p.bins)
        # Candidates are "bin <= b" for b < per_feature - 1: the top bin and the missing
        # values' bin are never read, so the histogram skips their rows.
        self.unread_from = np.maximum(self.per_feature - 1, 0).astype(np.uint8)

    def begin_tree(self, msg: dict[str, Any], rows: np.ndarray, cts: np.ndarray) -> None:
        n = self.x.shape[0]
        bad_range = rows.size > 0 and (rows.min() < 0 or rows.max() >= n)
        if rows.ndim != 1 or rows.size != cts.shape[0] or bad_range:
            raise BoostProtocolError("ml.boost: the bank's tree rows do not match its ciphertexts")
        full = np.zeros((n, self.pk.ct_limbs), dtype=np.uint64)
        full[:, 0] = 1
        full[rows] = self.pk.wrap(cts).data
        self.cts = Ciphertexts(full, self.pk.key_id)
        self.sample = np.zeros(n, dtype=bool)
        self.sample[rows] = True
        self.slot, self.k = int(msg["slot"]), int(msg["k"])
        feats = msg["features"]
        nb = self.p.bins + 1
        f_idx, b_idx = np.nonzero(np.arange(nb)[None, :] < self.per_feature[:, None] - 1)
        if feats is not None:
            keep = np.isin(f_idx, np.asarray(feats, dtype=np.int64))
            f_idx, b_idx = f_idx[keep], b_idx[keep]
        # One random order of this tree's candidates, kept for every node of the tree so
        # that the bank can subtract sibling sums itself (see protocols/secureboost.md).
        perm = random_permutation(f_idx.size)
        self.tree_ids = np.stack([f_idx[perm], b_idx[perm]], axis=1)
        self.nodes: set[int] = set()

    def level(self, plans: list[int], assign: np.ndarray) -> tuple[list[int], np.ndarray]:
        if assign.shape != (self.x.shape[0],):
            raise BoostProtocolError("ml.boost: node assignment does not cover this party's rows")
        self.assign = assign
        counts, parts = [], []
        for node in plans:
            rows = np.nonzero((assign == node) & self.sample)[0]
            sums, _ = self.pk.histogram(self.cts, rows, self.bins, self.p.bins + 1,
                                        self.unread_from)
            packed = self._candidates(sums.data.reshape(self.bins.shape[0], self.p.bins + 1, -1))
            self.nodes.add(int(node))
            counts.append(int(self.tree_ids.shape[0]))
            parts.append(packed)
        return counts, np.vstack(parts) if parts else np.zeros((0, self.pk.ct_limbs), np.uint64)

    def _candidates(self, hist: np.ndarray) -> np.ndarray:
        """Cumulative "bin <= b" sums in this tree's candidate order, packed, re-randomised."""
        nf, nb, width = hist.shape
        if self.tree_ids.shape[0] == 0:
            return np.zeros((0, width), np.uint64)
        cum = hist.copy()
        for j in range(1, nb):
            cum[:, j] = self.pk.add(self.pk.wrap(cum[:, j - 1]), self.pk.wrap(cum[:, j])).data
        cts = self.pk.wrap(np.ascontiguousarray(cum[self.tree_ids[:, 0], self.tree_ids[:, 1]]))
        return self.pk.rerandomize(self.pk.pack(cts, self.k, self.slot)).data

    def split(self, chosen: list[list[int]]) -> dict[str, Any]:
        records, masks = [], []
        ids = self.tree_ids
        for node, cand in chosen:
            if not 0 <= int(cand) < ids.shape[0]:
                raise BoostProtocolError(f"ml.boost: split of unknown candidate {cand}")
            f, b = (int(v) for v in ids[int(cand)])
            rows = np.nonzero(self.assign == int(node))[0]
            self.records.append((f, b))
            records.append(len(self.records) - 1)
            masks.append(np.packbits(self.bins[f, rows] <= b))
        return {"records": records, "masks": masks}


async def train_partner(ctx: Context, x: np.ndarray, bank: str,
                        names: list[str] | None = None) -> dict[str, Any]:
    """Serve the bank's training; returns this partner's split table (its model)."""
    st = PartnerState(np.asarray(x, dtype=np.float64), bank)
    while True:
        msg = await ctx.recv(bank, "cmd")
        op = msg.get("op")
        if op == "key":
            st.setup(msg)
            await ctx.send(bank, "features", int(st.x.shape[1]))
        elif op == "tree":
            rows = await ctx.recv(bank, "rows")
            st.begin_tree(msg, np.asarray(rows), await _recv_chunks(ctx, bank, msg))
        elif op == "level":
            assign = await ctx.recv(bank, "assign")
            counts, data = st.level([int(v) for v in msg["nodes"]], np.asarray(assign))
            await ctx.send(bank, "counts", counts)
            await ctx.send(bank, "cand", data)
        elif op == "split":
            await ctx.send(bank, "masks", st.split(msg["chosen"]))
        elif op == "end_tree":
            st.nodes = set()
        elif op == "done":
            return _partner_model(st, msg["used"], names, msg.get("importance", {}))
        else:
            raise BoostProtocolError(f"ml.boost: unknown step {op!r} from {bank}")


async def _recv_chunks(ctx: Context, bank: str, msg: dict[str, Any]) -> np.ndarray:
    """The tree's ciphertexts, sent in ``msg["chunks"]`` messages (checked by begin_tree)."""
    chunks = msg.get("chunks", 1)
    if not isinstance(chunks, int) or not 1 <= chunks <= 1 << 20:
        raise BoostProtocolError(f"ml.boost: the bank announced {chunks!r} ciphertext chunks")
    parts = [np.asarray(await ctx.recv(bank, "ct")) for _ in range(chunks)]
    if any(a.ndim != 2 or a.shape[1] != parts[0].shape[1] for a in parts):
        raise BoostProtocolError("ml.boost: the bank's ciphertext chunks differ in shape")
    return np.concatenate(parts) if chunks > 1 else parts[0]


def _partner_model(st: PartnerState, used: list[int], names: list[str] | None,
                   importance: dict[str, dict[str, float]]) -> dict[str, Any]:
    names = names or [f"x{j}" for j in range(st.x.shape[1])]
    table: dict[str, dict[str, Any]] = {}
    per_feature: dict[str, dict[str, float]] = {}
    for rid in used:
        if not 0 <= int(rid) < len(st.records):
            raise BoostProtocolError(f"ml.boost: the bank named an unknown record {rid}")
        f, b = st.records[int(rid)]
        table[str(rid)] = {"feature": names[f], "threshold": float(st.edges[f][b])}
        e = per_feature.setdefault(names[f], {"gain": 0.0, "splits": 0})
        got = importance.get(str(rid), {})
        e["gain"] += float(got.get("gain", 0.0))
        e["splits"] += int(got.get("splits", 0))
    return {"role": "partner", "bank": st.bank, "records": table, "features": names,
            "importance": per_feature}


# ---- prediction ------------------------------------------------------------------

def split_outcomes(records: dict[str, dict[str, Any]], x: np.ndarray, names: list[str]
                   ) -> tuple[list[int], np.ndarray]:
    """Record ids and, per record, x[feature] <= threshold over the rows (NaN: right)."""
    col = {nm: j for j, nm in enumerate(names)}
    ids = sorted(int(r) for r in records)
    out = np.zeros((len(ids), x.shape[0]), dtype=bool)
    for i, rid in enumerate(ids):
        rec = records[str(rid)]
        if rec["feature"] not in col:
            raise ValueError(f"ml.boost: feature {rec['feature']!r} of the model is missing")
        out[i] = x[:, col[rec["feature"]]] <= rec["threshold"]
    return ids, out


async def predict_partner(ctx: Context, model: dict[str, Any], x: np.ndarray) -> None:
    """Answer one prediction request of the bank (batch or one row)."""
    bank = model["bank"]
    req = await ctx.recv(bank, "predict")
    rows = np.asarray(req["rows"], dtype=np.int64) if req.get("rows") is not None else None
    xs = x if rows is None else x[rows]
    ids, outcome = split_outcomes(model["records"], np.asarray(xs, np.float64), model["features"])
    await ctx.send(bank, "outcomes", {"ids": ids, "bits": np.packbits(outcome, axis=1),
                                      "n": int(xs.shape[0])})


async def predict_bank(ctx: Context, model: dict[str, Any], x: np.ndarray, partners: list[str],
                       rows: list[int] | None = None) -> np.ndarray:
    """Scores (probabilities or values) of the rows; partners learn only which rows."""
    xs = x if rows is None else x[np.asarray(rows)]
    n = xs.shape[0]
    for q in partners:
        await ctx.send(q, "predict", {"rows": rows})
    go_left: dict[tuple[str, int], np.ndarray] = {}
    replies = await asyncio.gather(*(ctx.recv(q, "outcomes") for q in partners))
    for q, reply in zip(partners, replies, strict=True):
        if int(reply["n"]) != n:
            raise BoostProtocolError(f"ml.boost: party {q} answered for {reply['n']} rows, not {n}")
        for i, rid in enumerate(reply["ids"]):
            go_left[(q, int(rid))] = np.unpackbits(reply["bits"][i], count=n).astype(bool)
    edges = [np.asarray(e) for e in model["edges"]]
    bins = np.stack([apply_edges(xs[:, j], edges[j], model["params"]["bins"])
                     for j in range(xs.shape[1])]) if xs.shape[1] else np.zeros((0, n), np.uint8)
    for rid, (f, b) in enumerate(model["records"]):
        go_left[(ctx.party, rid)] = bins[f] <= b
    boosted = Boosted.from_dict(model["boosted"])
    margin = np.full(n, boosted.base)
    for tree in boosted.trees:
        margin += np.array(tree.value)[tree_leaves(tree, go_left, n)]
    return objective_of(BoostParams(objective=boosted.objective)).transform(margin)
