"""The per-bin label counts of ``ml.binning`` on Ray: row partitions, masked partial sums.

With ``party_params.<me>.ray`` (the bank and each owner), the one expensive
stage of ``ml.binning``, the HE grouped sums of the bank's label over an
owner's fine-bin indices (:mod:`meshmpc.ml.grouped_he`), runs partition by
partition on worker pairs (:func:`meshmpc.scale.run_on_ray`, one run per owner
with the bank): worker k of the bank encrypts the labels of partition k under
a fresh key, worker k of the owner computes the encrypted per-bin sums of its
rows, and the bank's worker decrypts them. Fine binning (cut points need whole
columns), the merges and the WOE table stay on the coordinators, as in one
process; only the label slices and bin-index slices go to the workers, as
sealed Parquet partitions.

**What the bank learns is unchanged**: per-partition counts would tell it more
than the single-process run's per-bin totals, so the owner adds to partition
k's sums a mask M_k in Z_t (t = 2^24, the plaintext modulus), drawn by its
coordinator from the OS with sum_k M_k = 0 mod t, inside the fresh public-key
encryption it adds anyway (one encryption of M_k instead of one of 0: same
re-randomisation, same noise flooding). Each decrypted partition is uniform on
its own; the bank adds them mod t and gets exactly the per-bin bad counts of
all rows (fewer than t), from which it derives each feature's last bin as one
process does. The owner's per-bin row counts are sent by its coordinator, as in
one process. The WOE and IV are therefore identical to the single-process run's.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import seal

from meshmpc.jobs.api import StepContext
from meshmpc.jobs.datasets import DatasetHandOver, TableDataset, write_dataset
from meshmpc.ml import grouped_he
from meshmpc.ml.bins import FineBins
from meshmpc.ml.grouped_kernel import FusedProducts, bins_by_feature
from meshmpc.ml.predict_scaled import agree_partitions, partition_costs
from meshmpc.ml.product_he_owner import workers as kernel_threads
from meshmpc.ml.woe import BinningError
from meshmpc.mpc.errors import MpcError
from meshmpc.net import Context
from meshmpc.scale import PairWork, RayOptions, ScaleConfigError, run_on_ray

T = grouped_he.PLAIN_MODULUS


def slot_offsets(sizes: Sequence[int]) -> np.ndarray:
    """Each feature's first slot in the layout-free slot vector (n_bins - 1 slots each)."""
    return np.cumsum([0, *(max(0, int(b) - 1) for b in sizes)])


def draw_masks(partitions: int, slots: int) -> np.ndarray:
    """(partitions, slots) masks in Z_t from the OS, each column summing to 0 mod t."""
    masks = np.frombuffer(os.urandom(4 * partitions * slots), np.uint32).reshape(
        partitions, slots).astype(np.int64) % T
    if partitions:
        masks[-1] = (-masks[:-1].sum(axis=0)) % T
    return masks


def _mask_coefficients(lay: grouped_he.GroupLayout, group: int, mask: np.ndarray,
                       offsets: np.ndarray) -> np.ndarray:
    """The plaintext holding ``mask`` at the slot positions of one packed plaintext."""
    values = np.concatenate([mask[offsets[f]:offsets[f] + lay.slots[f]]
                             for f in lay.groups[group]])
    coeffs = np.zeros(grouped_he.POLY_DEGREE, np.uint64)
    coeffs[lay.positions(group)] = values.astype(np.uint64)
    return coeffs


def _masked_groups(state: grouped_he.OwnerState, first: int, stop: int, mask: np.ndarray,
                   offsets: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`grouped_he.compute_groups` with Enc(mask) in place of its Enc(0)."""
    sums = state.fused.group_sums(state.ct_ntt, state.bins, state.lay, first, stop,
                                  kernel_threads())
    out = []
    p = state.bfv.primes[:, None]
    for g in range(first, stop):
        plain = state.bfv.plaintext(_mask_coefficients(state.lay, g, mask, offsets))
        masked = state.bfv.words(state.encryptor.encrypt(plain))
        total = (sums[g - first] + masked) % p[None]  # both < p: no overflow
        positions = state.lay.positions(g)
        noise = grouped_he._noise(positions.size, state.bits, state.bfv.primes)
        out.append(((total[0][:, positions] + noise) % p, total[1]))
    return out


async def masked_owner_side(ctx: Context, bank: str, groups: np.ndarray,
                            sizes: Sequence[int], mask: np.ndarray) -> None:
    """:func:`grouped_he.owner_side` whose results carry the partition's mask."""
    lay = grouped_he.plan(groups.shape[0], sizes)
    bfv = grouped_he.GroupContext()
    bits = grouped_he.flood_bits(lay, bfv.q_bits)
    public = await ctx.recv(bank, "pk")
    try:
        key = bfv.context.from_public_str(bytes(public))
    except Exception as exc:
        raise MpcError(f"party {bank}: its HE public key does not load ({exc})") from exc
    fused = FusedProducts(bfv.primes, grouped_he.POLY_DEGREE)
    ct_ntt = await grouped_he._receive_inputs(ctx, bank, bfv, fused, lay)
    state = grouped_he.OwnerState(bfv, fused, ct_ntt, seal.Encryptor(bfv.context, key),
                                  bins_by_feature(groups), lay, bits)
    offsets = slot_offsets(sizes)
    for first in range(0, len(lay.groups), grouped_he.GROUPS_PER_TASK):
        stop = min(first + grouped_he.GROUPS_PER_TASK, len(lay.groups))
        results = await asyncio.to_thread(_masked_groups, state, first, stop, mask, offsets)
        await ctx.send(bank, f"out/{first}", grouped_he._flat(results))


async def count_partition(ctx: Context, item: int, state: dict[str, Any], *, bank: str,
                          owner: str, dataset: TableDataset, sizes: list[int],
                          masks: np.ndarray | None) -> dict[str, Any]:
    """One partition on a worker: the bank's masked slot sums (mod t), or the owner's part."""
    start, cpu = time.perf_counter(), time.process_time()
    table = await asyncio.to_thread(dataset.read, item)
    scope = ctx.scope(f"part/{item}")
    if ctx.party == bank:
        labels = table.column("y").to_numpy()
        enc = await asyncio.to_thread(grouped_he.BankEncryption, labels)
        # encrypt off the event loop (bank_send reuses the cache): a loop busy for seconds
        # misses the pair link's pings on a loaded node, and the pair is retried
        await asyncio.to_thread(enc.blocks, grouped_he.plan(labels.size, sizes).k)
        lay = await grouped_he.bank_send(scope, owner, enc, sizes)
        counts = await grouped_he.bank_receive(scope, owner, enc, lay, sizes)
        keep = np.ones(counts.size, dtype=bool)
        keep[np.cumsum([int(b) for b in sizes]) - 1] = False  # last bins: not sums
        return {"slots": counts[keep].tolist(), "seconds": round(time.perf_counter() - start, 4),
            "cpu_s": round(time.process_time() - cpu, 4)}
    assert masks is not None
    groups = np.column_stack([c.to_numpy() for c in table.columns]).astype(np.uint8) \
        if table.num_columns else np.zeros((table.num_rows, 0), np.uint8)
    await masked_owner_side(scope, bank, groups, sizes, masks[item])
    return {"seconds": round(time.perf_counter() - start, 4),
            "cpu_s": round(time.process_time() - cpu, 4)}


def _folder(step: StepContext) -> Path:
    handover = step.options.get("datasets")
    if not isinstance(handover, DatasetHandOver):
        raise ScaleConfigError(f"party {step.party}, step {step.step_id}: a `ray:` step needs "
                               f"the job runner's scratch datasets; run it as a job step")
    return handover.directory / "binning"


async def counts_with(ctx: Context, step: StepContext, peer: str, options: RayOptions,
                      bank: str, inputs: pa.Table, sizes: list[int]
                      ) -> tuple[dict[int, dict[str, Any]], dict[str, Any]]:
    """One bank-owner pair's partitions on Ray: the workers' results and the scale report."""
    rows = int(inputs.num_rows)
    partition_rows = await agree_partitions(ctx, step, peer, rows, options)
    folder = _folder(step) / f"{'bank' if step.party == bank else 'owner'}-{peer}"
    dataset = write_dataset(inputs, folder / "input", partition_rows, step.scratch_vault)
    owner = peer if step.party == bank else step.party
    masks = None if step.party == bank else draw_masks(dataset.partitions,
                                                       int(slot_offsets(sizes)[-1]))
    work = PairWork(count_partition, folder / "done",
                    {"bank": bank, "owner": owner, "dataset": dataset, "sizes": sizes,
                     "masks": masks})
    scale = await run_on_ray(ctx, peer, list(range(dataset.partitions)), work, options)
    report = {**scale.to_dict(), "partitions": dataset.partitions,
              "partition_rows": partition_rows, **partition_costs(scale.results)}
    return scale.results, report


def bad_counts(results: dict[int, dict[str, Any]], sizes: Sequence[int],
               total_bad: int) -> np.ndarray:
    """Per-bin bad counts of every feature from the partitions' masked slot sums."""
    offsets = slot_offsets(sizes)
    summed = np.zeros(int(offsets[-1]), np.int64)
    for k in sorted(results):
        slots = np.asarray(results[k]["slots"], dtype=np.int64)
        if slots.shape != summed.shape:
            raise BinningError(f"partition {k}: {slots.size} slot sums, expected {summed.size}")
        summed = (summed + slots) % T
    out = []
    for f in range(len(sizes)):
        part = summed[offsets[f]:offsets[f + 1]]
        out.append(np.concatenate([part, [total_bad - int(part.sum())]]))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


async def he_counts_on_ray(step: StepContext, ctx: Context, bank: str, owners: list[str],
                           layouts: dict[str, list[dict[str, Any]]], y: np.ndarray | None,
                           fine: FineBins, n: int, options: RayOptions
                           ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """:func:`meshmpc.ml.binning_protocol._he_counts` on Ray: the same (bad, total)
    counts of every owner's fine bins at the bank, and the scale reports."""
    from meshmpc.ml.binning_protocol import _check_totals, _totals

    counts: dict[str, np.ndarray] = {}
    reports: dict[str, Any] = {}
    active = [o for o in owners if layouts[o]]
    sizes = {o: [int(f["n_bins"]) for f in layouts[o]] for o in active}
    if step.party == bank:
        assert y is not None
        labels = pa.table({"y": np.asarray(y, dtype=np.int64)})
        for i, owner in enumerate(active):
            step.progress(i, len(active), f"label counts of {owner} on Ray")
            results, reports[owner] = await counts_with(ctx.scope(owner), step, owner, options,
                                                        bank, labels, sizes[owner])
            bad = bad_counts(results, sizes[owner], int(np.asarray(y).sum()))
            totals = _check_totals(step, owner, await ctx.recv(owner, "totals"),
                                   sizes[owner], n)
            if np.any(bad < 0) or np.any(bad > totals):
                raise BinningError(f"party {step.party}, step {step.step_id}: bad counts of "
                                   f"{owner}'s bins exceed their row counts")
            counts[owner] = np.stack([bad, totals], axis=1)
    elif step.party in active:
        groups = pa.table({f"g{j}": fine.groups[:, j] for j in range(fine.groups.shape[1])})
        _, reports[bank] = await counts_with(ctx.scope(step.party), step, bank, options, bank,
                                             groups, sizes[step.party])
        await ctx.send(bank, "totals", _totals(fine))
    return counts, reports


async def ray_counts(step: StepContext, ctx: Context, bank: str, owners: list[str],
                     layouts: dict[str, list[dict[str, Any]]], y: np.ndarray | None,
                     fine: FineBins, n: int, setting: Any, grouped_sum: str
                     ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The hook of :func:`meshmpc.ml.binning_protocol.secure_binning` for ``ray:``."""
    from meshmpc.scale import parse_ray_options

    options = parse_ray_options(setting, f"party {step.party}, step {step.step_id}: "
                                         f"party_params.ray")
    assert options is not None
    if grouped_sum != "he":
        raise ScaleConfigError(f"party {step.party}, step {step.step_id}: ml.binning on Ray "
                               f"counts labels by HE grouped sums; set grouped_sum: he or "
                               f"remove `ray:`")
    return await he_counts_on_ray(step, ctx, bank, owners, layouts, y, fine, n, options)
