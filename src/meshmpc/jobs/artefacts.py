"""What a run leaves on disk: per-step artefact folders and the party's manifest.

``out/<job>/<party>/<step>/`` holds a step's tables (``<name>.parquet``),
models (``<name>.json``), files the component wrote itself and ``report.json``.
A step is written into a hidden temporary folder (``.tmp-<step>-<random>``)
and renamed into place only once every party has finished the step, so a
reader never sees a half-written step. ``manifest.json`` (rewritten atomically
after every step) records each step's component and version, timings, bytes
sent and received, the SHA-256 of every artefact and the digest of the step's
inputs, which ``--resume`` compares before skipping a step.

A table's float dictionary columns (``ml.binning``'s compact WOE: a uint8 bin
index a cell, a float WOE a bin) are stored as their index columns with the
dictionaries in the Parquet schema metadata (:data:`COMPACT_KEY`), since pyarrow
reads float dictionaries back dense; :func:`read_table` (the runner's ``--resume``)
rebuilds them, so a reloaded WOE table is 1 byte a cell with bit-identical values,
and :func:`read_local_table` gives plain floats by default (for pandas). Read table
artefacts through these functions: a bare ``pq.read_table`` sees the indices.

With a vault (the party's key, :mod:`meshmpc.data.vault`) every artefact file
of a step (tables, models, ``report.json`` and the files a component wrote)
is sealed with AES-256-GCM before the step is renamed into place, each bound
to its logical name ``<job>/<party>/<step>/<file>`` so a file moved to another
step, job or node does not open. The manifest stays readable (steps, timings,
hashes of the sealed files; no data) and records the key id. Read artefacts
back with :func:`read_bytes`, :func:`read_json` and :func:`read_table`, which
open sealed and plain files alike and say which key is missing. A file a
component left in its workdir without listing it is sealed in place too.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from meshmpc.data.vault import MAGICS, STREAM_MAGICS, Vault, VaultError, default_vault_dir
from meshmpc.jobs.api import StepOutput

MANIFEST = "manifest.json"
REPORT = "report.json"
MANIFEST_VERSION = 1


def party_dir(out_dir: str | Path, job: str, party: str) -> Path:
    return Path(out_dir) / job / party


def new_workdir(root: Path, step_id: str) -> Path:
    """A fresh hidden temporary folder for one step's artefacts."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / f".tmp-{step_id}-{secrets.token_hex(4)}"
    path.mkdir()
    return path


def remove_stale_workdirs(root: Path) -> None:
    """Drop temporary folders a killed run left behind (never a completed step)."""
    if root.is_dir():
        for child in root.glob(".tmp-*"):
            shutil.rmtree(child, ignore_errors=True)


@dataclass(frozen=True)
class Sealing:
    """How one step's artefacts are sealed: the party's vault and the step's logical name."""

    vault: Vault
    step: str
    """``<job>/<party>/<step>``: the prefix every artefact's bound name starts with."""

    @classmethod
    def for_step(cls, vault: Vault | None, job: str, party: str, step: str) -> Sealing | None:
        return None if vault is None else cls(vault, f"{job}/{party}/{step}")

    def write(self, path: Path, rel: str, data: bytes) -> None:
        self.vault.write(path, data, f"{self.step}/{rel}")


def write_output(workdir: Path, output: StepOutput,
                 sealing: Sealing | None = None) -> dict[str, Any]:
    """Write ``output`` into ``workdir`` (sealed with ``sealing``); return its manifest entry."""
    if not isinstance(output, StepOutput):
        raise TypeError(f"a component must return StepOutput, not {type(output).__name__}")
    for name in output.files:
        if not (workdir / name).is_file():
            raise FileNotFoundError(f"the component listed file {name!r} but did not write "
                                    f"it under its workdir")
    files: dict[str, bytes] = {}
    for name, table in output.tables.items():
        _check_name(name, "table")
        files[f"{name}.parquet"] = _parquet_bytes(table)
    for name, model in output.models.items():
        _check_name(name, "model")
        files[f"{name}.json"] = json.dumps(model, indent=1, sort_keys=True).encode()
    files[REPORT] = json.dumps(output.report, indent=1, sort_keys=True, default=str).encode()
    for rel, data in files.items():
        _store(workdir, rel, data, sealing)
    if sealing is not None:
        for rel in output.files:  # what the component wrote itself: sealed in place, once
            data = (workdir / rel).read_bytes()
            if rel in files or data[:4] in MAGICS:  # a model of the same name, sealed above
                continue
            _store(workdir, rel, data, sealing)
        _seal_strays(workdir, sealing)
    entry = {"tables": sorted(output.tables), "models": sorted(output.models),
             "files": list(output.files), "artefacts": hash_tree(workdir)}
    if sealing is not None:
        entry["sealed"] = sealing.vault.key_id.hex()
    return entry


def _seal_strays(workdir: Path, sealing: Sealing) -> None:
    """Seal in place what a component left under its workdir without listing it (scratch it
    did not clean up), so nothing in clear is renamed into the step's folder."""
    for path in sorted(p for p in workdir.rglob("*") if p.is_file()):
        with path.open("rb") as fh:
            head = fh.read(4)
        if head not in MAGICS + STREAM_MAGICS:
            _store(workdir, str(path.relative_to(workdir)), path.read_bytes(), sealing)


COMPACT_KEY = b"meshmpc.compact"
"""Schema metadata of a table artefact whose float dictionary columns (ml.binning's
compact WOE) are stored as their integer indices: {column: [value type, hex of the
values' bytes]}. pyarrow reads float dictionaries back dense (8 bytes a cell); this
way a reloaded WOE table is 1 byte a cell again, with bit-identical values."""


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(compact_for_parquet(table), sink)
    return sink.getvalue()


def compact_for_parquet(table: pa.Table) -> pa.Table:
    """``table`` with every float dictionary column replaced by its indices, the
    dictionaries recorded in the schema metadata (see COMPACT_KEY)."""
    dictionaries: dict[str, list[str]] = {}
    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_dictionary(kind) and pa.types.is_floating(kind.value_type):
            merged = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
            if merged.dictionary.null_count == 0:
                values = merged.dictionary.to_numpy(zero_copy_only=False)
                dictionaries[name] = [values.dtype.str, values.tobytes().hex()]
                columns.append(merged.indices)
                continue
        columns.append(column)
    if not dictionaries:
        return table
    metadata = dict(table.schema.metadata or {})
    metadata[COMPACT_KEY] = json.dumps(dictionaries).encode()
    return pa.table(columns, names=table.column_names).replace_schema_metadata(metadata)


def table_from_parquet(data: bytes, compact: bool = True) -> pa.Table:
    """A table artefact's bytes as a table, its compact columns rebuilt as dictionary
    arrays (the inverse of :func:`compact_for_parquet`), or with ``compact=False`` as
    plain float columns (what pandas and people want: a WOE table may hold one value
    in two bins, which pandas' categoricals refuse)."""
    table = pq.read_table(pa.BufferReader(data))
    metadata = dict(table.schema.metadata or {})
    recorded = metadata.pop(COMPACT_KEY, None)
    if recorded is None:
        return table
    dictionaries = json.loads(recorded)
    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        if name in dictionaries:
            kind, hexed = dictionaries[name]
            values = pa.array(np.frombuffer(bytes.fromhex(hexed), dtype=np.dtype(kind)))
            indices = column.combine_chunks()
            rebuilt = pa.DictionaryArray.from_arrays(indices, values)
            column = pa.chunked_array([rebuilt if compact else rebuilt.cast(values.type)])
        columns.append(column)
    return pa.table(columns, names=table.column_names).replace_schema_metadata(metadata or None)


def _store(workdir: Path, rel: str, data: bytes, sealing: Sealing | None) -> None:
    if sealing is None:
        (workdir / rel).write_bytes(data)
    else:
        sealing.write(workdir / rel, rel, data)


def read_bytes(step_dir: Path, rel: str, vault: Vault | None = None) -> bytes:
    """One artefact of a completed step (``out/<job>/<party>/<step>/<rel>``), opened if sealed.

    A sealed file without the vault is a :class:`VaultError` saying whose key opens it.
    """
    path = step_dir / rel
    data = path.read_bytes()
    if data[:4] not in MAGICS:
        return data
    if vault is None:
        raise VaultError(f"{path}: sealed under vault key {data[4:12].hex()}; read it on the "
                         "party that wrote it, with its vault key (node: keys/<party>.vault, "
                         "cluster run: <party>.vault beside its key, local run: "
                         "$MESHMPC_VAULT_DIR/<party>.vault)")
    job, party, step = step_dir.parts[-3:]
    return vault.open(data, f"{job}/{party}/{step}/{rel}")


def read_json(step_dir: Path, rel: str, vault: Vault | None = None) -> Any:
    """A JSON artefact (a model, ``report.json``) of a completed step."""
    return json.loads(read_bytes(step_dir, rel, vault))


def read_table(step_dir: Path, name: str, vault: Vault | None = None,
               compact: bool = True) -> pa.Table:
    """The table ``name`` (``<name>.parquet``) of a completed step (compact WOE columns
    as dictionary arrays unless ``compact=False``: see :func:`table_from_parquet`)."""
    return table_from_parquet(read_bytes(step_dir, f"{name}.parquet", vault), compact)


def _check_name(name: str, kind: str) -> None:
    if not name or "/" in name or name.startswith(".") or name == "report":
        raise ValueError(f"invalid {kind} name {name!r}")


def hash_tree(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, keyed by relative path."""
    return {str(p.relative_to(folder)): file_sha256(p)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def commit(workdir: Path, final: Path) -> None:
    """Move a finished step's folder into place (replacing an older run of the step)."""
    old = None
    if final.exists():
        old = final.with_name(f".tmp-old-{final.name}-{secrets.token_hex(4)}")
        final.rename(old)
    workdir.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def is_intact(final: Path, entry: dict[str, Any]) -> bool:
    """True when the step folder holds exactly the artefacts the manifest recorded."""
    recorded = entry.get("artefacts")
    return final.is_dir() and isinstance(recorded, dict) and hash_tree(final) == recorded


def load_output(final: Path, entry: dict[str, Any], vault: Vault | None = None) -> StepOutput:
    """A completed step's artefacts read back, as downstream steps receive them."""
    return StepOutput(
        tables={n: read_table(final, n, vault) for n in entry.get("tables", [])},
        models={n: read_json(final, f"{n}.json", vault) for n in entry.get("models", [])},
        files=list(entry.get("files", [])),
        report=read_json(final, REPORT, vault),
    )


def read_manifest(root: Path) -> dict[str, Any]:
    """The party's manifest, or an empty one when there is none (or it is unreadable)."""
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Atomically replace ``manifest.json``."""
    tmp = root / f".tmp-{MANIFEST}-{secrets.token_hex(4)}"
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str))
    os.replace(tmp, root / MANIFEST)


def local_vault(party: str) -> Vault | None:
    """The vault a local run on this machine sealed ``party``'s artefacts with, if any."""
    path = default_vault_dir() / f"{party}.vault"
    return Vault.load(path) if path.exists() else None


def read_artefact(path: Path, vault: Vault | None = None) -> bytes:
    """A file that may be a sealed artefact (``out/<job>/<party>/<step>/<file>``): plain
    files as they are; sealed ones opened with ``vault`` or the party's local key,
    whichever sealed it (a job run locally, then served with a cluster config)."""
    path = Path(path)
    data = path.read_bytes()
    if data[:4] not in MAGICS:
        return data
    local = local_vault(path.parent.parent.name)
    usable = [v for v in (vault, local) if v is not None]
    chosen = next((v for v in usable if v.key_id == data[4:12]), usable[0] if usable else None)
    return read_bytes(path.parent, path.name, chosen)


def read_local(path: Path) -> bytes:
    """``out/<job>/<party>/<step>/<file>`` of a local run, opened with that party's local key."""
    return read_bytes(path.parent, path.name, local_vault(path.parent.parent.name))


def read_local_table(path: Path, compact: bool = False) -> pa.Table:
    """A table artefact of a local run (see :func:`read_local`); WOE columns as plain
    floats unless ``compact`` (see :func:`table_from_parquet`)."""
    return table_from_parquet(read_local(path), compact)


def read_local_json(path: Path) -> Any:
    """A JSON artefact of a local run (see :func:`read_local`)."""
    return json.loads(read_local(path))
