"""Job files: parse the YAML, check every field, order the steps.

A job file (see ../shared/docs/JOBS.md) has ``name``, ``parties`` (each
party's ``data``, ``key``, ``label``, ``obs_date``, ``schema`` and any extra
fields a component reads), ``steps`` (``id``, ``component``, ``after``,
``params``, ``party_params``, ``parties``, ``security``) and an optional
``security`` default. Everything is checked before any party connects:
unknown keys (with the closest known key suggested), unknown components
(against the installed entry points), unknown parties, duplicate ids,
missing ``after`` targets and cycles are errors naming the file and field.

A party field that is not a known one is kept in ``PartyInput.extra`` (for
example ``risklist``) unless it is a near miss of a known field (``lable``),
which is an error: a typo must not silently drop a label.

Relative data paths resolve against the job file's folder (or ``base_dir``).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshmpc.jobs.api import PartyInput
from meshmpc.jobs.errors import JobFileError

JOB_KEYS = ("name", "description", "parties", "steps", "security", "purpose")
STEP_KEYS = ("id", "component", "after", "params", "party_params", "parties", "security")
PARTY_FIELDS = ("data", "key", "label", "obs_date", "schema")
SECURITY_MODES = ("dishonest-majority", "honest-majority")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class StepSpec:
    """One step: which component runs, after which steps, with which settings."""

    id: str
    component: str
    after: tuple[str, ...]
    params: Mapping[str, Any]
    party_params: Mapping[str, Mapping[str, Any]]
    parties: tuple[str, ...]
    security: str


@dataclass(frozen=True)
class JobSpec:
    """A parsed, checked job; ``steps`` are in the runner's topological order."""

    name: str
    parties: Mapping[str, PartyInput]
    steps: tuple[StepSpec, ...]
    security: str
    source: str
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)
    base_dir: str = ""
    """The folder relative paths resolve against (components get it as options["job_dir"])."""

    def step(self, step_id: str) -> StepSpec:
        return next(s for s in self.steps if s.id == step_id)

    def ancestors(self, step_id: str) -> list[str]:
        """Every step ``step_id`` depends on, in topological order (nearest last)."""
        wanted: set[str] = set()
        stack = list(self.step(step_id).after)
        while stack:
            current = stack.pop()
            if current not in wanted:
                wanted.add(current)
                stack.extend(self.step(current).after)
        return [s.id for s in self.steps if s.id in wanted]

    def public_digest(self) -> str:
        """SHA-256 of what every party must agree on: no paths, no party_params."""
        public = {
            "name": self.name, "security": self.security,
            "parties": {p: {"key": i.key, "label": i.label, "obs_date": i.obs_date}
                        for p, i in self.parties.items()},
            "steps": [{"id": s.id, "component": s.component, "after": list(s.after),
                       "params": s.params, "parties": list(s.parties), "security": s.security}
                      for s in self.steps],
        }
        return hashlib.sha256(canonical_json(public)).hexdigest()


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON bytes for hashing (sorted keys, no whitespace)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()


def load_job(source: str | Path | Mapping[str, Any], components: Iterable[str] | None = None,
             base_dir: str | Path | None = None, name: str | None = None) -> JobSpec:
    """Parse a job file (path) or an already-loaded mapping and check it.

    ``components``: the component names that exist (default: no check);
    ``name``: how errors refer to a mapping (default ``<job>``).
    """
    if isinstance(source, Mapping):
        raw, where = dict(source), name or "<job>"
        base = Path(base_dir) if base_dir is not None else Path.cwd()
    else:
        path = Path(source)
        where = str(path)
        raw = read_yaml(path)
        base = Path(base_dir) if base_dir is not None else path.parent
    return parse_job(raw, where, base, components)


def read_yaml(path: Path) -> dict[str, Any]:
    """The job file's top-level mapping, with a clear error when it is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise JobFileError(path, "(file)", f"cannot read the job file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise JobFileError(path, "(file)", f"not UTF-8 text (byte {exc.start}); save the job "
                                           "file as UTF-8") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise JobFileError(path, "(file)", f"not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise JobFileError(path, "(file)", "a job file must be a mapping with name, parties, steps")
    return raw


def _unknown_keys(where: str, field_name: str, got: Iterable[str], known: Iterable[str]) -> None:
    known = list(known)
    for key in got:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
            raise JobFileError(where, f"{field_name}{key}", f"unknown key {key!r}{hint}")


def _mapping(where: str, field_name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise JobFileError(where, field_name, f"must be a mapping, got {type(value).__name__}")
    return value


def _string(where: str, field_name: str, value: Any, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise JobFileError(where, field_name, "must be a non-empty string")
    return value


def parse_job(raw: Mapping[str, Any], where: str, base: Path,
              components: Iterable[str] | None = None) -> JobSpec:
    """Check ``raw`` (a job file's mapping) field by field and build the :class:`JobSpec`."""
    _unknown_keys(where, "", raw, JOB_KEYS)
    name = _string(where, "name", raw.get("name"))
    assert name is not None
    if not _NAME.match(name):
        raise JobFileError(where, "name", f"{name!r}: use letters, digits, '.', '_' or '-'")
    security = _security(where, "security", raw.get("security", SECURITY_MODES[0]))
    _string(where, "purpose", raw.get("purpose"), required=False)  # retention of the output
    parties = _parties(where, _mapping(where, "parties", raw.get("parties")), base)
    if not parties:
        raise JobFileError(where, "parties", "a job needs at least one party")
    steps_raw = raw.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise JobFileError(where, "steps", "must be a non-empty list of steps")
    known = set(components) if components is not None else None
    steps = [_step(where, i, s, list(parties), security, known) for i, s in enumerate(steps_raw)]
    return JobSpec(name, parties, tuple(topological_order(where, steps)), security, where,
                   dict(raw), str(base))


def _security(where: str, field_name: str, value: Any) -> str:
    if value not in SECURITY_MODES:
        raise JobFileError(where, field_name,
                           f"{value!r} is not one of {', '.join(SECURITY_MODES)}")
    return str(value)


def _parties(where: str, raw: dict[str, Any], base: Path) -> dict[str, PartyInput]:
    parties: dict[str, PartyInput] = {}
    for party, entry in raw.items():
        if not isinstance(party, str) or not _NAME.match(party):
            raise JobFileError(where, f"parties.{party}", "party ids are letters, digits, _ or -")
        fields = _mapping(where, f"parties.{party}", entry)
        extra = {k: v for k, v in fields.items() if k not in PARTY_FIELDS}
        for key in extra:
            close = difflib.get_close_matches(str(key), PARTY_FIELDS, n=1, cutoff=0.75)
            if close:
                raise JobFileError(where, f"parties.{party}.{key}",
                                   f"unknown key {key!r}; did you mean {close[0]!r}?")
        values = {k: _string(where, f"parties.{party}.{k}", fields.get(k), required=False)
                  for k in PARTY_FIELDS}
        for path_field in ("data", "schema"):
            if values[path_field] is not None:
                values[path_field] = _resolve(base, values[path_field])
        if values["schema"] is not None:
            extra["schema"] = values["schema"]
        parties[party] = PartyInput(party, values["data"], values["key"], values["label"],
                                    values["obs_date"], extra)
    return parties


def _resolve(base: Path, value: str | None) -> str | None:
    """Relative file paths resolve against the job's folder; URLs stay as they are."""
    if value is None or "://" in value:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path))


def _step(where: str, index: int, raw: Any, parties: list[str], security: str,
          components: set[str] | None) -> StepSpec:
    at = f"steps[{index}]"
    entry = _mapping(where, at, raw)
    step_id = _string(where, f"{at}.id", entry.get("id"))
    assert step_id is not None
    if not _NAME.match(step_id) or "/" in step_id:
        raise JobFileError(where, f"{at}.id", f"{step_id!r}: use letters, digits, '_' or '-'")
    at = f"steps[{index}] (id {step_id})"
    _unknown_keys(where, f"{at}.", entry, STEP_KEYS)
    component = _string(where, f"{at}.component", entry.get("component"))
    assert component is not None
    if components is not None and component not in components:
        close = difflib.get_close_matches(component, sorted(components), n=1)
        hint = f"did you mean {close[0]!r}?" if close else \
            f"installed: {', '.join(sorted(components)) or 'none'}"
        raise JobFileError(where, f"{at}.component",
                           f"step {step_id!r} names unknown component {component!r}; {hint}")
    after = _names(where, f"{at}.after", entry.get("after"))
    step_parties = _names(where, f"{at}.parties", entry.get("parties")) or tuple(parties)
    for p in step_parties:
        _known_party(where, f"{at}.parties", step_id, p, parties)
    party_params = _mapping(where, f"{at}.party_params", entry.get("party_params"))
    for p, value in party_params.items():
        _known_party(where, f"{at}.party_params", step_id, p, list(step_parties))
        _mapping(where, f"{at}.party_params.{p}", value)
    return StepSpec(step_id, component, after, _mapping(where, f"{at}.params",
                                                        entry.get("params")),
                    {p: dict(v or {}) for p, v in party_params.items()},
                    tuple(p for p in parties if p in step_parties),
                    _security(where, f"{at}.security", entry.get("security", security)))


def _names(where: str, field_name: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise JobFileError(where, field_name, "must be a list of names")
    return tuple(dict.fromkeys(value))


def _known_party(where: str, field_name: str, step_id: str, party: str,
                 parties: list[str]) -> None:
    if party not in parties:
        close = difflib.get_close_matches(party, parties, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"parties are {', '.join(parties)}"
        raise JobFileError(where, field_name,
                           f"step {step_id!r} names unknown party {party!r}; {hint}")


def topological_order(where: str, steps: list[StepSpec]) -> list[StepSpec]:
    """Kahn's algorithm, ties broken by file order, so every party gets the same order."""
    by_id: dict[str, StepSpec] = {}
    for s in steps:
        if s.id in by_id:
            raise JobFileError(where, f"steps (id {s.id})", f"step id {s.id!r} appears twice")
        by_id[s.id] = s
    for s in steps:
        for target in s.after:
            if target not in by_id:
                close = difflib.get_close_matches(target, list(by_id), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise JobFileError(where, f"steps (id {s.id}).after",
                                   f"step {s.id!r} runs after {target!r}, which is not a "
                                   f"step of this job{hint}")
    done: list[StepSpec] = []
    placed: set[str] = set()
    while len(done) < len(steps):
        ready = [s for s in steps if s.id not in placed and set(s.after) <= placed]
        if not ready:
            stuck = [s.id for s in steps if s.id not in placed]
            raise JobFileError(where, "steps", f"the steps {', '.join(stuck)} can never run: "
                                               "their 'after' lists form a cycle")
        done.append(ready[0])
        placed.add(ready[0].id)
    return done
