"""Tables handed to a scaled-out step as sealed Parquet row partitions (a dataset).

A step whose party runs it on Ray (``party_params.<me>.ray``) scores or counts
its rows partition by partition on that party's workers, so it must not be
handed one in-memory table to split: the runner gives it a
:class:`DatasetHandOver` in ``step.options["datasets"]``, from which the step
asks for the table it needs with the partition size both parties agreed
(:meth:`DatasetHandOver.get`). The table is then written once as sealed Parquet
files, partition k holding rows ``offsets[k]..offsets[k+1]`` in the table's
order, under the step's scratch vault (the workers get its key inside the
party's own cluster, as for the PSI buckets). The folder is a hidden
``.tmp-*`` sibling of the step's workdir: removed when the step ends, and by the
next run's start if the process died.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from meshmpc.data.vault import Vault
from meshmpc.jobs.api import StepOutput, find_table


@dataclass(frozen=True)
class TableDataset:
    """A table as sealed Parquet row partitions (picklable: Ray workers read it)."""

    directory: Path
    offsets: tuple[int, ...]
    """Row offsets: partition k holds rows offsets[k] .. offsets[k + 1] - 1."""
    vault_key: bytes
    suite: str

    @property
    def partitions(self) -> int:
        return len(self.offsets) - 1

    @property
    def num_rows(self) -> int:
        return self.offsets[-1]

    def rows(self, k: int) -> int:
        return self.offsets[k + 1] - self.offsets[k]

    def path(self, k: int) -> Path:
        return self.directory / f"part-{k:05d}.parquet"

    def read(self, k: int) -> pa.Table:
        """Partition ``k`` (opened with the dataset's key; bound to its file name)."""
        path = self.path(k)
        return Vault(self.vault_key, self.suite).read_table(path, path.name)

    def read_all(self) -> pa.Table:
        """Every partition in order (for the parts of a step that need all rows)."""
        return pa.concat_tables([self.read(k) for k in range(self.partitions)])


def partition_offsets(rows: int, partition_rows: int) -> tuple[int, ...]:
    """Offsets of ceil(rows / partition_rows) partitions (one empty one for 0 rows)."""
    if partition_rows < 1:
        raise ValueError(f"partition_rows must be >= 1, got {partition_rows}")
    cuts = list(range(0, rows, partition_rows)) or [0]
    return (*cuts, rows)


def write_dataset(table: pa.Table, directory: Path, partition_rows: int,
                  vault: Vault) -> TableDataset:
    """``table`` as sealed row partitions of ``partition_rows`` rows under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    dataset = TableDataset(directory, partition_offsets(table.num_rows, partition_rows),
                           bytes(vault._raw), vault.suite)  # noqa: SLF001 - workers open it
    for k in range(dataset.partitions):
        path = dataset.path(k)
        vault.write_table(path, table.slice(dataset.offsets[k], dataset.rows(k)), path.name)
    return dataset


class DatasetHandOver:
    """The runner's datasets for one scaled-out step (see the module docstring)."""

    def __init__(self, inputs: Mapping[str, StepOutput], directory: Path,
                 vault: Vault) -> None:
        self._inputs = inputs
        self.directory = directory
        self._vault = vault
        self._made: dict[tuple[str, int], TableDataset] = {}

    def get(self, name: str, partition_rows: int) -> TableDataset | None:
        """The nearest ancestor's table ``name`` as a dataset (written on first use);
        None when no ancestor produced one."""
        if (name, partition_rows) not in self._made:
            table = find_table(self._inputs, name)
            if table is None:
                return None
            folder = self.directory / f"{name}-{partition_rows}"
            self._made[(name, partition_rows)] = write_dataset(table, folder, partition_rows,
                                                               self._vault)
        return self._made[(name, partition_rows)]

    def close(self) -> None:
        """Remove every partition written for the step."""
        shutil.rmtree(self.directory, ignore_errors=True)
