"""A partner's joint PIR table: per credit code its list flags *and* its masked partial score.

One labelled keyword-PIR table per partner serves both the fraud screen and
the joint online score, so a decision costs one PIR query per partner (see
protocols/credit-online-score.md). Each record (compact JSON) holds

* ``t``, ``r``, ``d`` (``list_type``, ``risk_level``, ``listed_date``): the
  partner's risk-list entry (null when the firm is not listed; the reason code
  travels in labelled mode);
* ``h`` (held): whether the partner holds feature data on the firm;
* ``m`` (masked, a JSON integer): the partner's partial score (its points table from the joint
  job's scorecard, applied to its own features) plus ``sum_Q +-PRF(seed_PQ,
  epoch || key)`` in Z_2^64 (:func:`meshmpc.ml.predict.key_masks`): seeds are
  drawn pairwise among the partners and never reach the bank, and the masks
  of all partners cancel in the sum for every key they all publish;
* ``e`` (epoch): the public name of the mask draw, the same at every partner, so
  the bank can tell records of different draws apart instead of summing noise.

Records are published for every key of ``universe ∪ held keys ∪ listed keys``.
``universe`` is a public registry of credit codes (unified social credit codes
are public registration data) that all partners share: a firm of the universe
that a partner does not hold gets the *documented default* partial score, the
points of the partner's card when every feature is missing (its missing bins,
or the card's default WOE), and ``held: false``. What that reveals: to the
bank, that this partner has no data on the applicant (the flag; the same bit
keyword PIR's found / not found gives); to nobody else anything. A firm
outside a partner's table is "not found" there and no joint score exists.

The partial scores are fixed for an epoch: rebuilding the table for a new
risk list keeps the masked words (same epoch), so two versions never let the
bank difference a partner's score; new partial scores need a new epoch (all
partners restart their publication together).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from meshmpc.data.loaders import load_table
from meshmpc.errors import DataError
from meshmpc.ml.predict import FRAC_BITS, key_masks, pairwise_seeds
from meshmpc.ml.scorecard import PartyScorecard
from meshmpc.mpc.ring import RING64
from meshmpc.net import Context

KEY = "credit_code"
LIST_COLUMNS = ("list_type", "risk_level", "listed_date")
RECORD_NAMES = {"list_type": "t", "risk_level": "r", "listed_date": "d"}
"""Short field names in the record: the PIR database's slot is as wide as its longest
record, and a query's cost grows with the database (about 40 % fewer bytes than the
long names)."""
MASKED, HELD, EPOCH = "m", "h", "e"


class JointTableError(DataError):
    """A partner's input to its joint table is unusable; names party, file and column."""


@dataclass(frozen=True)
class ScoredKeys:
    """The masked partial score of every published key (fixed for one epoch)."""

    keys: pa.Array
    held: npt.NDArray[np.bool_]
    masked: npt.NDArray[np.uint64]
    epoch: str


def partial_scores(party: str, features: pa.Table, card: PartyScorecard, key: str = KEY,
                   universe: pa.Array | None = None) -> tuple[pa.Array, npt.NDArray[np.bool_],
                                                             npt.NDArray[np.float64]]:
    """(keys, held, partial points) over held keys then universe keys not held."""
    if key not in features.column_names:
        raise JointTableError(f"party {party}: feature table has no key column {key!r}; "
                              f"columns are {features.column_names[:8]}")
    missing = [f.name for f in card.features if f.name not in features.column_names]
    if missing:
        raise JointTableError(f"party {party}: scorecard feature(s) {missing[:5]} are not "
                              f"columns of the feature table; use the data the job trained on")
    keys = features.column(key).combine_chunks().cast(pa.string())
    if keys.null_count or len(pc.unique(keys)) != len(keys):
        raise JointTableError(f"party {party}: key column {key!r} has empty or repeated values")
    points = card.partial_from_table(features)
    if universe is None or len(universe) == 0:
        return keys, np.ones(len(keys), bool), points
    extra = pc.unique(universe.cast(pa.string()).filter(
        pc.invert(pc.is_in(universe.cast(pa.string()), value_set=keys))))
    default = default_partial(card)
    all_keys = pa.concat_arrays([keys, extra.drop_null()])
    held = np.concatenate([np.ones(len(keys), bool), np.zeros(len(all_keys) - len(keys), bool)])
    return all_keys, held, np.concatenate([points, np.full(len(held) - len(keys), default)])


def default_partial(card: PartyScorecard) -> float:
    """The documented default: the card's points for a firm with every feature missing."""
    return card.score_fields({}) if card.features else float(card.base_points or 0.0)


async def agree_epoch(ctx: Context, partners: Sequence[str]) -> str:
    """The first partner draws the epoch's public name and tells the others."""
    if ctx.party == partners[0]:
        epoch = secrets.token_hex(4)
        for other in partners[1:]:
            await ctx.send(other, "epoch", epoch)
        return epoch
    got = await ctx.recv(partners[0], "epoch")
    if not isinstance(got, str) or len(got) != 8:
        raise JointTableError(f"party {partners[0]} sent a malformed mask epoch")
    return got


async def mask_partials(ctx: Context, partners: Sequence[str], keys: pa.Array,
                        held: npt.NDArray[np.bool_],
                        partial: npt.NDArray[np.float64]) -> ScoredKeys:
    """Draw the pairwise seeds and the epoch with the other partners; mask every partial."""
    if ctx.party not in partners:
        raise JointTableError(f"party {ctx.party} is not one of the partners {list(partners)}")
    scope = ctx.scope("joint-score")
    epoch = await agree_epoch(scope, partners)
    seeds = await pairwise_seeds(scope.scope(epoch), partners)
    masks = key_masks(keys, seeds, ctx.party, partners, f"epoch-{epoch}")
    masked = RING64.add(RING64.encode(np.asarray(partial, np.float64), FRAC_BITS), masks)
    return ScoredKeys(keys, held, masked, epoch)


def joint_table(scored: ScoredKeys, risk_list: pa.Table | None, key: str = KEY) -> pa.Table:
    """The PIR table: key, list columns (null where not listed), held, masked, epoch
    (under the record's short names, :data:`RECORD_NAMES`).

    Listed firms the partner publishes no score for are published too (their
    screen works; their record has no ``masked`` value, so no joint score)."""
    listed = _list_columns(risk_list, key)
    keys = scored.keys
    only_listed = listed.filter(pc.invert(pc.is_in(listed.column(key), value_set=keys)))
    all_keys = pa.concat_arrays([keys, only_listed.column(key).combine_chunks()])
    at = pc.index_in(all_keys, value_set=listed.column(key).combine_chunks())
    columns: dict[str, pa.Array] = {key: all_keys}
    for name in LIST_COLUMNS:
        columns[RECORD_NAMES[name]] = listed.column(name).combine_chunks().take(at)
    pad = len(all_keys) - len(keys)
    columns[HELD] = pa.array(np.concatenate([scored.held, np.zeros(pad, bool)]))
    columns[MASKED] = pa.concat_arrays([pa.array(scored.masked, pa.uint64()),
                                        pa.nulls(pad, pa.uint64())])
    columns[EPOCH] = pa.array([scored.epoch] * len(keys) + [None] * pad, pa.string())
    return pa.table(columns)


def _list_columns(risk_list: pa.Table | None, key: str) -> pa.Table:
    schema = pa.schema([(key, pa.string())] + [(n, pa.string()) for n in LIST_COLUMNS])
    if risk_list is None:
        return schema.empty_table()
    absent = [c for c in (key, *LIST_COLUMNS) if c not in risk_list.column_names]
    if absent:
        raise JointTableError(f"risk list lacks column(s) {absent}; expected {key} and "
                              f"{', '.join(LIST_COLUMNS)}")
    return pa.table({name: risk_list.column(name).cast(pa.string()) for name in schema.names})


def read_universe(path: str | Path | None, key: str = KEY) -> pa.Array | None:
    """The shared registry of credit codes (any table with the key column), or None."""
    if not path:
        return None
    table = load_table(Path(path))
    if key not in table.column_names:
        raise JointTableError(f"universe file {path}: no column {key!r}; columns are "
                              f"{table.column_names[:8]}")
    return table.column(key).combine_chunks().cast(pa.string())
