"""``meshmpc keygen``, ``meshmpc mesh check`` and ``meshmpc launch``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from meshmpc.net.check import probe_links
from meshmpc.net.config import WanProfile
from meshmpc.net.eventloop import run
from meshmpc.net.keys import IdentityKey
from meshmpc.net.launch import resolve, run_local, run_party


def register_keygen(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "keygen", help="create a party's identity key pair",
        description="Write <party>.key (private, mode 0600) and <party>.pub; print the "
        "public key to paste into the cluster config.",
    )
    parser.add_argument("--party", required=True, help="party id, e.g. bank")
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for the key files")
    parser.add_argument("--suite", choices=["default", "gm"], default="default",
                        help="link suite: default (Ed25519) or gm (SM2); the cluster's "
                        "[cluster] suite must match")
    parser.set_defaults(func=_keygen)


def _keygen(args: argparse.Namespace) -> int:
    identity = IdentityKey.generate(args.party, getattr(args, "suite", "default"))
    private_path, public_path = identity.save(args.out)
    print(f"private key: {private_path} (mode 0600, keep it on this node)")
    print(f"public key:  {public_path}")
    print(f'\n[[parties]]\nid = "{args.party}"\naddress = "HOST:PORT"\n'
          f'public_key = "{identity.public_b64}"')
    return 0


def register_mesh(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("mesh", help="mesh network tools")
    sub = parser.add_subparsers(dest="mesh_command", metavar="COMMAND", required=True)
    check = sub.add_parser(
        "check", help="connect to every peer and print latency and throughput per link",
        description="Run on every party at the same time (each with its own --party).",
    )
    check.add_argument("--config", type=Path, required=True, help="cluster.toml")
    check.add_argument("--party", required=True, help="this node's party id")
    check.add_argument("--key", type=Path, help="private key file (default: from the config)")
    check.add_argument("--pings", type=int, default=200)
    check.add_argument("--bulk-mib", type=int, default=16)
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=_mesh_check)


async def _check_job(ctx: object, pings: int, bulk_mib: int) -> dict:
    from meshmpc.net.context import Context

    assert isinstance(ctx, Context)
    return await probe_links(ctx, pings=pings, bulk_mib=bulk_mib)


def _mesh_check(args: argparse.Namespace) -> int:
    links = run(run_party(args.config, args.party, args.key, "meshmpc.net.cli:_check_job",
                          {"pings": args.pings, "bulk_mib": args.bulk_mib}))
    if args.json:
        for peer, figures in links.items():
            print(json.dumps({"party": args.party, "peer": peer, **figures}))
        return 0
    print(f"{'link':<24} {'rtt (median)':>14} {'throughput':>12}")
    for peer, figures in links.items():
        print(f"{args.party + ' <-> ' + peer:<24} {figures['rtt_us_median']:>11.0f} us "
              f"{figures['gbytes_per_s']:>7.2f} GB/s")
    return 0


def register_launch(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "launch", help="run a job as N local parties over the encrypted mesh on loopback",
        description="Generate keys and a config, start one process per party on 127.0.0.1, "
        "run JOB (an async function 'package.module:function' taking ctx and keyword "
        "arguments) in each, and print each party's result as a JSON line.",
    )
    parser.add_argument("--parties", default="bank,gov,fin,telco", help="comma-separated ids")
    parser.add_argument("--job", default="meshmpc.net.check:mesh_report")
    parser.add_argument("--args", default="{}", help="JSON object of keyword arguments")
    parser.add_argument("--dir", type=Path, help="keep keys and config in this folder")
    parser.add_argument("--wan-mbps", type=float)
    parser.add_argument("--wan-latency-ms", type=float, default=0.0)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.set_defaults(func=_launch)


def _launch(args: argparse.Namespace) -> int:
    parties = [p.strip() for p in args.parties.split(",") if p.strip()]
    if len(parties) < 2:
        raise SystemExit("meshmpc launch: need at least two parties")
    resolve(args.job)  # fail before starting processes if the job cannot be imported
    wan = None
    if args.wan_mbps is not None or args.wan_latency_ms:
        wan = WanProfile(args.wan_mbps, args.wan_latency_ms)
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    results = run_local(parties, args.job, json.loads(args.args), wan=wan,
                        timeout=args.timeout, directory=args.dir)
    for party in parties:
        print(json.dumps({"party": party, "result": results[party]}, default=str))
    return 0
