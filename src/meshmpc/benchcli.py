"""``meshmpc bench NAME``: run one benchmark module from bench/.

Benchmarks live in the repository's bench/ folder, installed as the
``meshmpc_bench`` package. Each ``bench/<name>.py`` exposes
``main(argv) -> int`` and prints one JSON object per result line with
``--json``. ``meshmpc bench all`` runs every module in turn.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil


def available() -> list[str]:
    """Names of the benchmark modules installed with meshmpc."""
    import meshmpc_bench

    return sorted(
        m.name for m in pkgutil.iter_modules(meshmpc_bench.__path__) if not m.name.startswith("_")
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run a benchmark (prints JSON lines with --json)",
        description="Run a benchmark from bench/. Arguments after NAME go to the benchmark.",
    )
    parser.add_argument("name", help="benchmark name, or 'all' (" + ", ".join(available()) + ")")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for the benchmark")
    parser.set_defaults(func=run)


BENCH_CONNECT_TIMEOUT_S = "120"
"""A benchmark's parties wait this long for each other to start (unless
``MESHMPC_CONNECT_TIMEOUT_S`` is set): on a loaded machine start-up can exceed the
20 s of ordinary local runs, and a benchmark that fails there measures nothing."""


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("MESHMPC_CONNECT_TIMEOUT_S", BENCH_CONNECT_TIMEOUT_S)
    names = available() if args.name == "all" else [args.name]
    status = 0
    for name in names:
        if name not in available():
            raise SystemExit(f"meshmpc bench: unknown benchmark {name!r}; have {available()}")
        module = importlib.import_module(f"meshmpc_bench.{name}")
        status |= int(module.main(list(args.rest)))
    return status
