"""Find components: the ``meshmpc.components`` entry points, or a test override.

Production code uses entry points only (any installed package can add
components). Tests and embedders may pass ``components=``: a mapping from a
component name to the callable itself (in-process runs) or to an import
string ``"package.module:function"`` (which also works in child processes).
An override adds to the installed components and wins over one of the same name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, cast

from meshmpc.jobs.api import COMPONENT_GROUP, Component

ComponentRef = Component | Callable[..., Any] | str
"""What ``components=`` maps a name to: a callable or ``"module:function"``."""


@dataclass(frozen=True)
class Resolved:
    """A loaded component and where it came from (recorded in the manifest)."""

    name: str
    run: Component
    origin: str
    version: str


class ComponentRegistry:
    """Component names available to a job, loaded on first use."""

    def __init__(self, overrides: Mapping[str, ComponentRef] | None = None) -> None:
        self._entries = {e.name: e for e in entry_points(group=COMPONENT_GROUP)}
        self._overrides = dict(overrides or {})
        self._loaded: dict[str, Resolved] = {}

    def names(self) -> list[str]:
        return sorted({*self._entries, *self._overrides})

    def load(self, name: str) -> Resolved:
        """The component ``name`` (a KeyError when there is none; the job check comes first)."""
        if name not in self._loaded:
            self._loaded[name] = self._load(name)
        return self._loaded[name]

    def _load(self, name: str) -> Resolved:
        if name in self._overrides:
            ref = self._overrides[name]
            if isinstance(ref, str):
                return Resolved(name, import_ref(ref), ref, "override")
            origin = f"{getattr(ref, '__module__', '?')}:{getattr(ref, '__qualname__', '?')}"
            return Resolved(name, cast(Component, ref), origin, "override")
        entry = self._entries[name]
        dist = getattr(entry, "dist", None)
        version = f"{dist.name} {dist.version}" if dist is not None else "unknown"
        return Resolved(name, cast(Component, entry.load()), entry.value, version)


def import_ref(ref: str) -> Component:
    """Import ``"package.module:function"``."""
    module_name, sep, attr = ref.partition(":")
    if not sep:
        raise ValueError(f"component {ref!r} must look like 'package.module:function'")
    return cast(Component, getattr(importlib.import_module(module_name), attr))


def overrides_for_processes(overrides: Mapping[str, ComponentRef] | None) -> dict[str, str]:
    """The override mapping as import strings, so child processes can load it too."""
    out: dict[str, str] = {}
    for name, ref in (overrides or {}).items():
        if isinstance(ref, str):
            out[name] = ref
            continue
        module, qualname = getattr(ref, "__module__", None), getattr(ref, "__qualname__", "")
        if not module or "<" in qualname:
            raise ValueError(f"component {name!r}: a local function cannot run in another "
                             "process; pass 'package.module:function'")
        out[name] = f"{module}:{qualname}"
    return out
