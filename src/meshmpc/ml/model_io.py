"""Per-party model files with a format version: logistic models and scorecards.

A model file holds only this party's part of the model. Every file carries
``format`` and ``version``; loading refuses a different format or a newer
version with a message saying which, rather than guessing. Writes go to a
temporary name and are renamed when complete.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from meshmpc.errors import MeshMPCError
from meshmpc.ml.logistic import LogisticConfig, LogisticResult

LOGISTIC_FORMAT = "meshmpc.logistic"
LOGISTIC_VERSION = 1


class ModelFormatError(MeshMPCError, ValueError):
    """A model file of another format or version (the message says which)."""


@dataclass
class LogisticModel:
    """One party's logistic model: its features and weights (or shares in strict mode)."""

    party: str
    features: list[str]
    weights: np.ndarray
    intercept: float | None = None
    strict: bool = False
    shares: dict[str, Any] | None = None
    source: str = "woe"
    stats: dict[str, Any] = field(default_factory=dict)
    security: str = "dishonest-majority"
    config: dict[str, Any] = field(default_factory=dict)


def logistic_model(party: str, names: list[str], result: LogisticResult,
                   config: LogisticConfig, security: str, source: str = "woe",
                   stats: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON dict of this party's trained model."""
    return {"format": LOGISTIC_FORMAT, "version": LOGISTIC_VERSION, "party": party,
            "features": list(names),
            "weights": [] if result.weights is None else [float(w) for w in result.weights],
            "intercept": result.intercept, "strict": config.strict,
            "shares": result.shares, "source": source, "stats": dict(stats or {}),
            "security": security, "config": {k: v for k, v in asdict(config).items()
                                             if not isinstance(v, Mapping)}}


def read_logistic_model(data: Mapping[str, Any], party: str | None = None) -> LogisticModel:
    """Check the format and version; the party's model."""
    check_format(data, LOGISTIC_FORMAT, LOGISTIC_VERSION)
    if party is not None and data.get("party") != party:
        raise ModelFormatError(f"the model belongs to party {data.get('party')!r}, "
                               f"not {party!r}")
    return LogisticModel(party=str(data["party"]), features=list(data["features"]),
                         weights=np.asarray(data["weights"], dtype=np.float64),
                         intercept=data.get("intercept"), strict=bool(data.get("strict")),
                         shares=data.get("shares"), source=str(data.get("source", "woe")),
                         stats=dict(data.get("stats") or {}),
                         security=str(data.get("security", "dishonest-majority")),
                         config=dict(data.get("config") or {}))


def check_format(data: Mapping[str, Any], fmt: str, version: int) -> None:
    got_fmt, got_version = data.get("format"), data.get("version")
    if got_fmt != fmt:
        raise ModelFormatError(f"expected a {fmt!r} model, got format {got_fmt!r}")
    if not isinstance(got_version, int) or got_version > version or got_version < 1:
        raise ModelFormatError(f"{fmt} model version {got_version!r} is not supported by this "
                               f"meshmpc (reads versions 1..{version}); upgrade meshmpc")


def save_model(path: Path, model: Mapping[str, Any]) -> Path:
    """Write a model dict as JSON atomically (temporary name, then rename)."""
    if "format" not in model or "version" not in model:
        raise ModelFormatError("a model must carry 'format' and 'version'")
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(model, ensure_ascii=False, indent=1))
    tmp.replace(path)
    return path


def load_model(path: Path, fmt: str | None = None) -> dict[str, Any]:
    """Read a model JSON; with ``fmt`` also check its format (any supported version)."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise ModelFormatError(f"{path}: not a model file (expected a JSON object)")
    if fmt == LOGISTIC_FORMAT:
        check_format(data, LOGISTIC_FORMAT, LOGISTIC_VERSION)
    elif fmt is not None and data.get("format") != fmt:
        raise ModelFormatError(f"{path}: expected a {fmt!r} model, got {data.get('format')!r}")
    return data
