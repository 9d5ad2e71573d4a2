"""One party process of a :class:`~cluster.HostileCluster`.

Connects to the mesh, runs the job, writes the result; on any error it
closes the mesh *with* the error (peers get an ABORT naming it), prints
``party P: ErrorType: message`` on stderr and exits 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from meshmpc.errors import stage_of
from meshmpc.net import codec
from meshmpc.net.config import load_config
from meshmpc.net.context import Context
from meshmpc.net.eventloop import run
from meshmpc.net.keys import IdentityKey
from meshmpc.net.tcp import TcpMesh


async def main(args: argparse.Namespace) -> Any:
    config = load_config(args.config)
    entry = config.party(args.party)
    identity = IdentityKey.load(args.party, entry.key_file or args.config.parent / "x.key")
    module, _, name = args.job.partition(":")
    job = getattr(importlib.import_module(module), name)
    kwargs = codec.unpack(args.args.read_bytes())
    mesh = await TcpMesh.connect(config, args.party, identity)
    try:
        result = await job(Context(mesh, config), **kwargs)
        await mesh.flush()
    except BaseException as exc:
        await mesh.close(exc)
        raise
    await mesh.close()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for flag in ("--config", "--args", "--result"):
        parser.add_argument(flag, type=Path, required=True)
    parser.add_argument("--party", required=True)
    parser.add_argument("--job", required=True)
    ns = parser.parse_args()
    try:
        outcome = run(main(ns))
    except Exception as exc:
        stage = stage_of(exc)
        where = f" [stage: {stage}]" if stage else ""
        print(f"party {ns.party}: {type(exc).__name__}: {exc}{where}", file=sys.stderr,
              flush=True)
        sys.exit(1)
    ns.result.write_bytes(codec.pack(outcome))
