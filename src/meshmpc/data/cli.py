"""``meshmpc data``: check a party's data file against its schema.

``meshmpc data check --schema S --input F [--report-dir D]`` writes
``<name>.quality.txt`` and ``<name>.quality.html`` (into D, default: beside
the input), prints the text report, and exits 0 when the data conforms to
the schema, 1 when it does not (2 when the schema or file cannot be read).

``meshmpc data infer --input F [--out S] [--ranges]`` drafts a schema for a
new source from one pass over it.

``meshmpc data purge [--dir NODE] [--out OUT ...] [--purpose P] [--dry-run]``
deletes what has outlived its purpose's retention: a node's job artefacts
(the same as ``meshmpc node purge``) and plain job output folders
(:mod:`meshmpc.data.purge`); ``--dry-run`` lists what would go and why.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from meshmpc.data.infer import infer_schema
from meshmpc.data.schema import dump_schema, write_schema
from meshmpc.data.validate import check
from meshmpc.progress import wanted
from meshmpc.userinput import HelpFormatter, UserError

HELP = HelpFormatter


def _text_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--encoding", default=None,
                        help="text encoding of a CSV file, e.g. gb18030 (default: the "
                        "schema's encoding, else utf-8)")
    parser.add_argument("--delimiter", default=None,
                        help="CSV delimiter (default: tab for .tsv, else a comma)")


def _read_options(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in (("encoding", args.encoding), ("delimiter", args.delimiter))
            if v is not None}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command and its ``check`` and ``infer`` subcommands."""
    parser = subparsers.add_parser("data", help="schemas, data quality checks and validation")
    commands = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    checker = commands.add_parser(
        "check", help="check a data file against its schema; write a text and HTML report",
        formatter_class=HELP)
    checker.add_argument("--schema", required=True, type=Path, help="schema TOML file")
    checker.add_argument("--input", required=True,
                         help="CSV/Parquet file or sqlite:///db?table=NAME URL")
    checker.add_argument("--report-dir", type=Path, default=None,
                         help="where to write the reports (default: beside the input)")
    checker.add_argument("--quiet", action="store_true", help="print only the verdict line")
    _text_options(checker)
    checker.set_defaults(func=run_check)
    drafter = commands.add_parser(
        "infer", help="draft a schema TOML from a data file (review it before use)",
        formatter_class=HELP)
    drafter.add_argument("--input", required=True,
                         help="CSV/Parquet file or sqlite:///db?table=NAME URL")
    drafter.add_argument("--out", type=Path, default=None,
                         help="schema file to write (default: print it)")
    drafter.add_argument("--ranges", action="store_true",
                         help="declare the observed min/max of numeric columns")
    _text_options(drafter)
    drafter.set_defaults(func=run_infer)
    _purge_parser(commands)
    parser.set_defaults(func=lambda args: _usage(parser))


def _purge_parser(commands: argparse._SubParsersAction) -> None:
    purge = commands.add_parser(
        "purge", formatter_class=HELP,
        help="delete job output whose purpose's retention has ended (node and plain runs)")
    purge.add_argument("--dir", type=Path, help="a node directory: purge its jobs (and use "
                       "its purposes for --out)")
    purge.add_argument("--out", type=Path, action="append", default=[],
                       help="a plain job output folder (out/); may be given more than once")
    purge.add_argument("--purpose", help="purpose of output folders that recorded none")
    purge.add_argument("--dry-run", action="store_true", help="list what would go; delete nothing")
    purge.set_defaults(func=run_purge)


def run_purge(args: argparse.Namespace) -> int:
    """Handler of ``meshmpc data purge``: node jobs (``--dir``) and plain folders (``--out``)."""
    from meshmpc.data.purge import purge_outputs, purge_scratch
    from meshmpc.platform.consent import DEFAULT_PURPOSES

    if args.dir is None and not args.out:
        raise UserError("meshmpc data purge: give --dir NODE, --out OUT, or both")
    verb = "would delete" if args.dry_run else "deleted"
    purposes = dict(DEFAULT_PURPOSES)
    if args.dir is not None:
        from meshmpc.platform.node import Node
        from meshmpc.platform.retention import purge

        node = Node.open(args.dir)
        purposes = dict(node.config.purposes)
        items = purge(node, dry_run=args.dry_run)
        for item in items:
            print(f"{verb} node job {item.job}: {item.path} ({item.bytes:,} bytes): {item.reason}")
        _purge_node_scratch(node, args.dry_run, verb)
    gone = kept = size = 0
    for out in args.out:
        for scratch in purge_scratch(out, dry_run=args.dry_run):
            print(f"{verb} {scratch.path} ({scratch.bytes:,} bytes): {scratch.reason}")
        for decision in purge_outputs(out, purposes, dry_run=args.dry_run,
                                      default_purpose=args.purpose):
            folder = decision.folder
            if decision.action == "delete":
                gone, size = gone + 1, size + folder.bytes
                print(f"{verb} {folder.path} ({folder.bytes:,} bytes): {decision.reason}")
            else:
                kept += 1
                print(f"keep {folder.path}: {decision.reason}")
    if args.out:
        print(f"output folders: {verb} {gone} ({size:,} bytes), kept {kept}")
    return 0


def _purge_node_scratch(node: Any, dry_run: bool, verb: str) -> None:
    """A node's leftover job scratch (runs that ended without cleaning up), into its audit."""
    from meshmpc.data import scratchdir
    from meshmpc.data.purge import purge_scratch

    jobs = node.config.directory / "jobs"
    for item in purge_scratch(jobs, dry_run=True):
        print(f"{verb} {item.path} ({item.bytes:,} bytes): {item.reason}")
        if not dry_run:
            scratchdir.remove([item.path])
            node.audit.append("data.purge", "retention", {"scratch": str(item.path),
                                                          "bytes": item.bytes,
                                                          "reason": item.reason})


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _report_dir(args: argparse.Namespace) -> Path:
    if args.report_dir is not None:
        return Path(args.report_dir)
    if "://" in args.input:
        return Path.cwd()
    return Path(args.input).resolve().parent


def run_check(args: argparse.Namespace) -> int:
    """Handler of ``meshmpc data check``."""
    report = check(args.schema, args.input, progress=wanted(args.quiet), **_read_options(args))
    stem = args.schema.name.split(".")[0] if "://" in args.input else None
    text_path, html_path = report.write(_report_dir(args), stem)
    text = report.to_text()
    print(text.splitlines()[2] if args.quiet else text, end="\n" if args.quiet else "")
    print(f"reports: {text_path} {html_path}", file=sys.stderr)
    return 0 if report.ok else 1


def run_infer(args: argparse.Namespace) -> int:
    """Handler of ``meshmpc data infer``."""
    schema = infer_schema(args.input, ranges=args.ranges, **_read_options(args))
    if args.encoding:
        schema = dataclasses.replace(schema, encoding=args.encoding)
    if args.out is None:
        print(dump_schema(schema), end="")
    else:
        write_schema(schema, args.out)
        print(f"wrote {args.out} ({len(schema.columns)} columns; key {list(schema.key)})")
    return 0
