"""The fields of a PSI job given as plain values (CLI, ``meshmpc launch --args``).

:func:`check_options` rejects a missing required field or an unknown one
(naming it and the closest valid field), before any process or link starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshmpc.userinput import UserError, check_known_keys

REQUIRED = ("input", "keys", "peers")
OPTIONAL = (
    "output", "receiver", "payload", "protocol", "reveal", "mode", "trim", "casefold",
    "halfwidth", "on_empty", "on_duplicate", "workers", "cache_dir", "progress",
    "bucket_rows", "schema", "validate", "encoding", "delimiter", "row_number_column",
    "quiet", "state_dir", "ray",
)


def check_options(options: Mapping[str, Any], where: str = "PSI job options") -> None:
    """Raise a :class:`UserError` for a missing or unknown field of a PSI job."""
    if not isinstance(options, Mapping):
        raise UserError(f"{where}: expected an object of job fields, got {options!r}")
    problem = check_known_keys(options, (*REQUIRED, *OPTIONAL), where)
    if problem:
        raise UserError(problem)
    missing = [name for name in REQUIRED if options.get(name) in (None, "", [])]
    if missing:
        raise UserError(f"{where}: missing field {missing[0]!r} (required: "
                        f"{', '.join(REQUIRED)}; e.g. \"keys\": [\"credit_code\"])")
    for name in ("keys", "peers"):
        if not isinstance(options[name], list | tuple):
            raise UserError(f"{where}: field {name!r} must be a list, e.g. [\"gov\"]")
