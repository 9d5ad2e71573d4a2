"""The cluster config parser: TOML documents, and the TOML it writes back."""

from __future__ import annotations

import tomllib

from meshmpc.errors import ConfigError
from meshmpc.net.config import parse_config


def TestOneInput(data: bytes) -> None:  # noqa: N802 - the name atheris calls
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return
    try:
        config = parse_config(doc)
    except ConfigError:
        return
    again = parse_config(tomllib.loads(config.to_toml()))
    assert again == config, "to_toml does not round-trip"
    assert again.fingerprint == config.fingerprint
