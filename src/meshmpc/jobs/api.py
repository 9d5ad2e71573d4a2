"""The contract between the job runner and the components it runs.

A component is ``async def run(step: StepContext, inputs: Mapping[str, StepOutput],
params: Mapping[str, Any]) -> StepOutput`` registered under the entry-point
group ``meshmpc.components`` with a dotted name (``psi.align``, ``ml.binning``).
Every party of the step runs the same component with its own data; they talk
only through ``step.ctx`` (the mesh, scoped to the step). The runner knows no
component by name; it parses the job, resolves the DAG, calls components and
writes what they return (see ../shared/docs/JOBS.md):

- ``tables``: pyarrow Tables, written as ``<name>.parquet``;
- ``models``: JSON-serialisable dicts, written as ``<name>.json``;
- ``files``: other artefacts a component wrote itself under ``step.workdir``
  (an HTML report, a CSV export), listed by their names there;
- ``report``: what this party learnt in the step, written as ``report.json``
  (only what the step reveals to this party; stable field names per component).

Artefacts are written under a temporary name and renamed when complete.

``inputs`` holds the outputs of *all* ancestor steps of the step (not only those
named in ``after``), keyed by step id, in the runner's topological order with the
nearest ancestor last; :func:`find_table` and :func:`find_model` look an artefact
up by name, nearest first. Conventions shared by the built-in components:

- table ``aligned``: this party's rows of the entities every party holds, in the
  common order (``psi.align``);
- table ``features``: this party's model features for those rows, one float
  column per feature, at the label holder also the label column (named as in
  ``parties.<bank>.label``) and ``obs_date`` when declared (``ml.binning`` emits
  WOE values, ``ml.select`` the selected subset);
- models named after the component's last word (``binning``, ``logistic``,
  ``scorecard``), each holding only this party's part of the model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from meshmpc.data.vault import Vault
from meshmpc.net import Context

COMPONENT_GROUP = "meshmpc.components"
"""Entry-point group under which packages register job components."""


@dataclass(frozen=True)
class PartyInput:
    """One party's declared inputs (``parties.<id>`` of the job file).

    Only the owning party reads ``data``; the other fields are public to the
    job (``label`` tells every party who holds the label, never its values).
    """

    party: str
    data: str | None = None
    key: str | None = None
    label: str | None = None
    obs_date: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class StepOutput:
    """What a component returns for this party; the runner writes it."""

    tables: dict[str, pa.Table] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepContext:
    """Everything a component may use on this party for one step.

    ``ctx`` is the mesh Context scoped to the step (tags cannot collide with
    other steps); ``party_params`` are this party's private settings
    (``party_params.<me>`` of the job file, never sent to others); ``workdir``
    is the step's temporary artefact directory (renamed into place by the
    runner on success); ``progress(done, total, what)`` reports progress.
    ``options`` carries the runner's settings: ``security`` (the step's
    security mode) and ``job_dir`` (the folder relative paths of the job file
    resolve against, for extra party fields a component reads as paths).
    ``scratch_vault`` seals the files a component writes for itself while it
    runs (:meth:`meshmpc.data.vault.Vault.sealed_scratch`): the party's vault,
    or without one a key only this process holds.
    """

    ctx: Context
    job_name: str
    step_id: str
    party: str
    parties: Mapping[str, PartyInput]
    step_parties: list[str]
    party_params: Mapping[str, Any]
    workdir: Path
    progress: Callable[[int, int, str], None] = lambda done, total, what: None
    options: Mapping[str, Any] = field(default_factory=dict)
    scratch_vault: Vault = field(default_factory=Vault.ephemeral)

    @property
    def me(self) -> PartyInput:
        """This party's declared inputs."""
        return self.parties[self.party]

    @property
    def label_holder(self) -> str | None:
        """The party whose input declares a label (the bank), if any."""
        holders = [p for p, spec in self.parties.items() if spec.label]
        return holders[0] if holders else None


def find_table(inputs: Mapping[str, StepOutput], name: str) -> pa.Table | None:
    """The table ``name`` of the nearest ancestor step that produced one."""
    for output in reversed(list(inputs.values())):
        if name in output.tables:
            return output.tables[name]
    return None


def find_model(inputs: Mapping[str, StepOutput], name: str) -> dict[str, Any] | None:
    """The model ``name`` of the nearest ancestor step that produced one."""
    for output in reversed(list(inputs.values())):
        if name in output.models:
            return output.models[name]
    return None


class Component(Protocol):
    """The callable registered under ``meshmpc.components``."""

    async def __call__(self, step: StepContext, inputs: Mapping[str, StepOutput],
                       params: Mapping[str, Any]) -> StepOutput: ...
