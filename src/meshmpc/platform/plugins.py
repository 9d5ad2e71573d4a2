"""Routers that other packages add to the node, found through the ``meshmpc.node_routers`` group.

An application (say meshmpc-credit's strategy service) registers, in its pyproject.toml::

    [project.entry-points."meshmpc.node_routers"]
    strategies = "meshmpc_credit.node_api:router"

where ``router`` is a callable returning a FastAPI ``APIRouter``. The node includes every one
it finds, so the platform never imports an application (layering: apps -> platform).
"""

from __future__ import annotations

from importlib.metadata import entry_points

from fastapi import APIRouter, FastAPI

from meshmpc.errors import MeshMPCError

ROUTER_GROUP = "meshmpc.node_routers"


class PluginRouterError(MeshMPCError, RuntimeError):
    """A registered router could not be loaded; names the entry point and the cause."""


def plugin_routers() -> list[tuple[str, APIRouter]]:
    """Every registered router, by entry-point name, in name order."""
    found = []
    for entry in sorted(entry_points(group=ROUTER_GROUP), key=lambda e: e.name):
        try:
            router = entry.load()()
        except Exception as exc:  # a broken plug-in must say which one and why
            raise PluginRouterError(f"node router {entry.name!r} ({entry.value}) failed to "
                                    f"load: {type(exc).__name__}: {exc}") from exc
        if not isinstance(router, APIRouter):
            raise PluginRouterError(f"node router {entry.name!r} ({entry.value}) returned "
                                    f"{type(router).__name__}, not a FastAPI APIRouter")
        found.append((entry.name, router))
    return found


def include_plugin_routers(app: FastAPI) -> list[str]:
    """Include every registered router in ``app``; the names included."""
    names = []
    for name, router in plugin_routers():
        app.include_router(router)
        names.append(name)
    return names
