"""The ``ray:`` setting of a party, and the lazy import of Ray.

``ray: {address: auto | "host:port", workers: N}`` in a party's job options
(or its part of a job file) moves that party's side of a bucketed job onto
its own Ray cluster; absent, the job runs in one process exactly as before.
Ray is an optional dependency (``pip install meshmpc[ray]``): nothing imports
it unless a ``ray:`` setting asks for it, and then a missing Ray is a
:class:`ScaleConfigError` saying how to install it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from meshmpc.errors import MeshMPCError
from meshmpc.userinput import check_known_keys

KEYS = ("address", "workers", "cpus", "relay", "max_attempts", "start_timeout_s",
        "link_timeout_s", "partition_rows")
DEFAULT_PARTITION_ROWS = 1 << 20
"""Rows per partition of a row-partitioned step (ml.predict, ml.binning on Ray)."""


class ScaleConfigError(MeshMPCError, ValueError):
    """A ``ray:`` setting is malformed, or Ray is configured but not installed."""


class ScaleError(MeshMPCError, RuntimeError):
    """A scaled-out run failed for good (a worker failed on every attempt, or a peer
    coordinator sent offers that do not match ours)."""


@dataclass(frozen=True)
class RayOptions:
    """How one party runs its side of a job on Ray.

    ``address``: ``"auto"`` (the cluster this node belongs to), ``"local"`` (start a
    private one in this process) or ``"host:port"`` of the head. ``workers``: worker
    pairs wanted (the run uses the smaller count of the two parties). ``cpus``: CPUs
    each worker reserves. ``relay``: partner workers reach ours through this party's
    own listening port (one inbound port), not through each worker's port.
    ``max_attempts``: tries per bucket before the job fails. ``partition_rows``: rows
    per row partition of the steps that score or count row by row (ml.predict,
    ml.binning); both parties use the smaller of their two values.
    """

    address: str = "auto"
    workers: int = 2
    cpus: float = 1.0
    relay: bool = False
    max_attempts: int = 3
    start_timeout_s: float = 120.0
    link_timeout_s: float = 60.0
    partition_rows: int = DEFAULT_PARTITION_ROWS

    def to_dict(self) -> dict[str, Any]:
        """Plain values (for job options passed between processes)."""
        return {k: getattr(self, k) for k in KEYS}


def parse_ray_options(value: Any, where: str = "ray") -> RayOptions | None:
    """A :class:`RayOptions` from a job's ``ray`` field; None when absent or null."""
    if value is None:
        return None
    if isinstance(value, RayOptions):
        return value
    if not isinstance(value, Mapping):
        raise ScaleConfigError(f"{where}: expected {{address: auto | \"host:port\", "
                               f"workers: N}}, got {value!r}")
    problem = check_known_keys(value, KEYS, where)
    if problem:
        raise ScaleConfigError(problem)
    options = RayOptions(**dict(value))
    _check(options, where)
    return options


def _check(options: RayOptions, where: str) -> None:
    address = options.address
    if not isinstance(address, str) or not (address in ("auto", "local") or _host_port(address)):
        raise ScaleConfigError(f"{where}.address: {address!r}: use auto, local or "
                               f"\"host:port\" of the Ray head")
    for name in ("workers", "max_attempts", "partition_rows"):
        number = getattr(options, name)
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise ScaleConfigError(f"{where}.{name}: must be a whole number >= 1, "
                                   f"got {number!r}")
    for name in ("cpus", "start_timeout_s", "link_timeout_s"):
        number = getattr(options, name)
        if isinstance(number, bool) or not isinstance(number, int | float) or number <= 0:
            raise ScaleConfigError(f"{where}.{name}: must be a number > 0, got {number!r}")
    if not isinstance(options.relay, bool):
        raise ScaleConfigError(f"{where}.relay: must be true or false, got {options.relay!r}")


def _host_port(text: str) -> bool:
    host, sep, port = text.rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) < 65536)


def require_ray(party: str) -> ModuleType:
    """The ``ray`` module, or a :class:`ScaleConfigError` telling ``party`` what to install."""
    try:
        import ray
    except ImportError as exc:
        raise ScaleConfigError(
            f"party {party}: the job asks for `ray:` (scale-out on a Ray cluster) but Ray is "
            f"not installed in this environment ({exc}); install it with "
            f"`pip install meshmpc[ray]` on every node of {party}'s cluster, or remove the "
            f"`ray:` setting to run in one process") from exc
    return ray


def connect_ray(ray: ModuleType, options: RayOptions) -> None:
    """Join (or, for ``address: local``, start) the party's Ray cluster once per process."""
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"log_to_driver": False, "include_dashboard": False,
                              "configure_logging": True, "logging_level": logging.WARNING}
    if options.address == "local":
        ray.init(**kwargs)
    else:
        ray.init(address=options.address, **kwargs)
