"""Reading a model step's inputs: feature matrix, labels, split, IV (this party only).

Errors name the party, the step, the column and the first offending rows, and
say what to do: they are raised before any protocol message is sent, so a bad
input stops the step on every party (the runner reports the failing party).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from meshmpc.errors import DataError
from meshmpc.jobs.api import StepContext, StepOutput, find_table
from meshmpc.ml.coded import CodedMatrix, is_coded

MAX_CATEGORIES = 30


class StepDataError(DataError):
    """A model step's input is unusable; the message names party, step and column."""


def _reserved(step: StepContext) -> set[str]:
    names = {"row", "role", "obs_date"}
    for spec in step.parties.values():
        names.update(n for n in (spec.key, spec.label, spec.obs_date) if n)
    return names


def feature_matrix(step: StepContext, inputs: Mapping[str, StepOutput],
                   params: Mapping[str, Any],
                   stats: Mapping[str, Any] | None = None,
                   stats_out: dict[str, Any] | None = None,
                   coded: bool = False) -> tuple[list[str], Any]:
    """This party's feature names and n x d float matrix.

    ``features: woe`` (default): the float columns of the nearest ``features``
    table. ``features: raw``: the ``aligned`` columns, numbers standardised
    (missing -> the mean), strings one-hot; ``stats`` (from the trained model)
    fixes the transform, else it is fitted on these rows. With ``coded`` and
    ml.binning's compact WOE columns the matrix is a
    :class:`~meshmpc.ml.coded.CodedMatrix` (1 byte a cell, decoded by row blocks
    where used) instead of an n x d float64 array.
    """
    source = str(params.get("features", "woe"))
    name = "aligned" if source == "raw" else "features"
    table = find_table(inputs, name)
    if table is None:
        raise StepDataError(f"party {step.party}, step {step.step_id}: no {name!r} table from "
                            f"an earlier step (ml.binning / ml.select give 'features', "
                            f"psi.align gives 'aligned')")
    columns = [c for c in table.column_names if c not in _reserved(step)]
    if source == "raw":
        names, x, fitted = raw_matrix(table, columns, stats)
        if stats_out is not None:
            stats_out.update(fitted)
        return names, x
    for column in columns:
        kind = table.schema.field(column).type
        if pa.types.is_dictionary(kind):  # ml.binning's compact WOE: bin index -> WOE
            kind = kind.value_type
        if not (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
            raise StepDataError(f"party {step.party}, step {step.step_id}, column {column!r}: "
                                f"type {kind} is not numeric; features must be WOE floats "
                                f"(run ml.binning first, or use features: raw)")
    if not columns:
        return [], np.zeros((table.num_rows, 0))
    if coded and is_coded(table, columns):
        matrix = CodedMatrix.from_table(table, columns)
        if not np.all(np.isfinite(matrix.values)):
            raise StepDataError(f"party {step.party}, step {step.step_id}: a WOE table holds a "
                                f"value that is not finite; rerun ml.binning")
        return columns, matrix
    x = np.column_stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
                         for c in columns])
    bad = np.argwhere(~np.isfinite(x))
    if bad.size:
        row, col = bad[0]
        raise StepDataError(f"party {step.party}, step {step.step_id}, column "
                            f"{columns[col]!r}: row {row} is missing or not finite "
                            f"({bad.shape[0]} cells in all); WOE features have no gaps")
    return columns, x


def raw_matrix(table: pa.Table, columns: list[str], stats: Mapping[str, Any] | None = None
               ) -> tuple[list[str], np.ndarray, dict[str, Any]]:
    """Standardised numbers and one-hot strings; the fitted transform as ``stats``."""
    fitted: dict[str, Any] = {} if stats is None else dict(stats)
    names, parts = [], []
    for column in columns:
        data = table.column(column)
        if pa.types.is_string(data.type) or pa.types.is_large_string(data.type):
            cats = fitted.get(column) or {"categories": sorted(
                v for v in pc.unique(data).to_pylist() if v is not None)[:MAX_CATEGORIES]}
            fitted[column] = cats
            values = np.asarray(data.to_pylist(), dtype=object)
            for c in cats["categories"]:
                names.append(f"{column}={c}")
                parts.append((values == c).astype(np.float64))
            continue
        raw = data.cast(pa.float64()).to_numpy(zero_copy_only=False)
        if column not in fitted:
            present = raw[np.isfinite(raw)]
            mean = float(present.mean()) if present.size else 0.0
            std = float(present.std()) if present.size else 1.0
            fitted[column] = {"mean": mean, "std": std or 1.0}
        spec = fitted[column]
        filled = np.where(np.isfinite(raw), raw, spec["mean"])
        names.append(column)
        parts.append(np.clip((filled - spec["mean"]) / spec["std"], -8, 8))
    x = np.column_stack(parts) if parts else np.zeros((table.num_rows, 0))
    return names, x, fitted


def bank_labels(step: StepContext, inputs: Mapping[str, StepOutput]) -> np.ndarray:
    """The label holder's 0/1 labels of the aligned rows, checked."""
    column = step.me.label
    if not column:
        raise StepDataError(f"party {step.party}, step {step.step_id}: this party declares no "
                            f"label column")
    for name in ("features", "aligned"):
        table = find_table(inputs, name)
        if table is not None and column in table.column_names:
            return check_labels(table.column(column), step.party, step.step_id, column)
    raise StepDataError(f"party {step.party}, step {step.step_id}, column {column!r}: the "
                        f"label column is in neither the 'features' nor the 'aligned' table")


def check_labels(data: Any, party: str, step_id: str, column: str) -> np.ndarray:
    """Labels as float 0/1; anything else is an error naming the rows."""
    values = np.asarray(pa.chunked_array([data]).cast(pa.float64())
                        .to_numpy(zero_copy_only=False)) \
        if isinstance(data, pa.Array | pa.ChunkedArray) else np.asarray(data, dtype=np.float64)
    bad = np.flatnonzero(~np.isin(values, (0.0, 1.0)))
    if bad.size:
        shown = ", ".join(f"row {r}: {values[r]!r}" for r in bad[:5])
        raise StepDataError(f"party {party}, step {step_id}, column {column!r}: labels must be "
                            f"0 (good) or 1 (bad); {bad.size} rows are not ({shown}); recode "
                            f"the label column")
    if values.size and values.min() == values.max():
        raise StepDataError(f"party {party}, step {step_id}, column {column!r}: every label is "
                            f"{values[0]:g}; a model needs both classes")
    return values


def step_roles(inputs: Mapping[str, StepOutput], n: int) -> np.ndarray:
    """The row roles of the nearest ``split`` table (all test when there is none)."""
    split = find_table(inputs, "split")
    if split is None or split.num_rows != n:
        return np.full(n, 2, dtype=np.int8)
    return split.column("role").to_numpy().astype(np.int8)


def find_iv(inputs: Mapping[str, StepOutput]) -> dict[str, float] | None:
    """IV by feature from the nearest binning report (every party's at the bank)."""
    for output in reversed(list(inputs.values())):
        for field in ("iv_all", "iv"):
            value = output.report.get(field)
            if isinstance(value, Mapping) and value:
                return {str(k): float(v) for k, v in value.items()}
    return None
