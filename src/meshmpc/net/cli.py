"""``meshmpc keygen``, ``meshmpc mesh check`` and ``meshmpc launch``."""

from __future__ import annotations

import argparse
import json
import re
import socket
from pathlib import Path
from typing import Any

from meshmpc.net.check import probe_links
from meshmpc.net.config import PartyConfig, WanProfile
from meshmpc.net.custody import Pkcs11Uri
from meshmpc.net.eventloop import run
from meshmpc.net.keys import IdentityKey
from meshmpc.net.launch import check_job_arguments, run_local, run_party
from meshmpc.userinput import HelpFormatter, UserError

PARTY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
DEFAULT_PORT = 7001
HELP = HelpFormatter


def check_party_name(name: str) -> str:
    """A party id usable as a file name and a TOML string: letters, digits, ``_``, ``-``."""
    if not PARTY_NAME.match(name):
        raise UserError(f"party name {name!r} is not allowed: use 1-64 letters, digits, '_' "
                        f"or '-', starting with a letter or digit (e.g. bank, gov_data)")
    return name


def listen_supported() -> bool:
    """Whether this version's cluster config has the separate ``listen`` field."""
    return "listen_host" in PartyConfig.__dataclass_fields__


def register_keygen(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "keygen", help="create a party's identity key pair", formatter_class=HELP,
        description="Write <party>.key (private, mode 0600) and <party>.pub, and print the "
        "[[parties]] entry for the cluster config (valid as printed; adjust the address).",
    )
    parser.add_argument("--party", required=True, help="party id, e.g. bank")
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for the key files")
    parser.add_argument("--address", default=None,
                        help="HOST:PORT peers dial to reach this party "
                        f"(default: this machine's name and port {DEFAULT_PORT})")
    parser.add_argument("--listen", default=None,
                        help="HOST:PORT this party binds (default: 0.0.0.0 and the address's "
                        "port; written only when the config format supports it)")
    parser.add_argument("--suite", choices=["default", "gm"], default="default",
                        help="link suite: default (Ed25519) or gm (SM2); the cluster's "
                        "[cluster] suite must match")
    parser.add_argument("--pkcs11", default=None, metavar="URI",
                        help="create the Ed25519 key inside a PKCS#11 token instead of a file, "
                        "e.g. 'pkcs11:token=meshmpc;object=bank-identity?pin-source=file:/etc/"
                        "meshmpc/pin' (module-path defaults to SoftHSM2's); <party>.key then "
                        "holds only this URI")
    parser.set_defaults(func=_keygen)


def _keygen(args: argparse.Namespace) -> int:
    party = check_party_name(args.party)
    private_path = args.out / f"{party}.key"
    if private_path.exists():  # FileExistsError: the command line prints it as one line
        raise FileExistsError(f"{private_path} exists: party {party} already has a key; keep "
                              f"using it, or move it away first to make a new one (peers "
                              f"must then update its public_key)")
    suite = getattr(args, "suite", "default")
    uri = getattr(args, "pkcs11", None)
    if uri is not None and suite != "default":
        raise UserError("--pkcs11 keys are Ed25519 (default suite): PKCS#11 defines no SM2 "
                        "mechanism and SoftHSM2 has none, so a gm (SM2) key lives in a file "
                        "(mode 0600); see docs/key-custody.md, 'SM2 keys and tokens'")
    identity = (IdentityKey.in_new_token_key(party, Pkcs11Uri.parse(uri, "--pkcs11"))
                if uri is not None else IdentityKey.generate(party, suite))
    private_path, public_path = identity.save(args.out)
    where = "its token URI" if identity.in_token else "mode 0600, keep it on this node"
    print(f"# private key: {private_path} ({where})")
    print(f"# public key:  {public_path}")
    print("# paste this entry into every party's cluster config:")
    print(party_snippet(party, identity.public_b64, getattr(args, "address", None),
                        getattr(args, "listen", None), private_path.resolve()))
    return 0


def party_snippet(party: str, public_b64: str, address: str | None, listen: str | None,
                  key_file: Path) -> str:
    """The ``[[parties]]`` TOML entry for a new key, valid as printed."""
    address = address or f"{socket.getfqdn() or 'localhost'}:{DEFAULT_PORT}"
    _check_address(address, "--address")
    lines = ["[[parties]]", f'id = "{party}"', f'address = "{address}"']
    if listen_supported():
        port = address.rpartition(":")[2]
        lines.append(f'listen = "{listen or "0.0.0.0:" + port}"')
    elif listen is not None:
        raise UserError("this version's cluster config has no 'listen' field; omit --listen")
    lines.append(f'public_key = "{public_b64}"')
    lines.append(f'key_file = "{key_file}"  # only on this party\'s own node')
    return "\n".join(lines)


def _check_address(address: str, option: str) -> None:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"{option} {address!r} must be HOST:PORT with a port 1-65535")


def _connect_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connect-timeout", type=float, default=None, metavar="SECONDS",
                        help="wait this long for peers to come up "
                        "(default: the config's connect_timeout_s)")


def register_mesh(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("mesh", help="mesh network tools")
    sub = parser.add_subparsers(dest="mesh_command", metavar="COMMAND", required=True)
    check = sub.add_parser(
        "check", help="connect to every peer and print latency and throughput per link",
        description="Run on every party at the same time (each with its own --party); "
        "all parties must give the same --pings and --bulk-mib.", formatter_class=HELP,
    )
    check.add_argument("--config", type=Path, required=True, help="cluster.toml")
    check.add_argument("--party", required=True, help="this node's party id")
    check.add_argument("--key", type=Path, help="private key file (default: from the config)")
    check.add_argument("--pings", type=int, default=200, help="ping-pongs per link")
    check.add_argument("--bulk-mib", type=int, default=16, help="MiB streamed per repeat")
    check.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                       help="give up when the check has not finished after this long")
    _connect_timeout(check)
    check.add_argument("--json", action="store_true", help="one JSON object per link")
    check.set_defaults(func=_mesh_check)


async def _check_job(ctx: object, pings: int, bulk_mib: int, timeout_s: float = 0.0) -> dict:
    from meshmpc.net.context import Context

    assert isinstance(ctx, Context)
    return await probe_links(ctx, pings=pings, bulk_mib=bulk_mib, timeout_s=timeout_s or None)


def _mesh_check(args: argparse.Namespace) -> int:
    if args.pings < 1 or args.bulk_mib < 1:
        raise UserError("--pings and --bulk-mib must be at least 1")
    links = run(run_party(args.config, args.party, args.key, "meshmpc.net.cli:_check_job",
                          {"pings": args.pings, "bulk_mib": args.bulk_mib,
                           "timeout_s": args.timeout},
                          connect_timeout_s=args.connect_timeout))
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
        formatter_class=HELP,
    )
    parser.add_argument("--parties", default="bank,gov,fin,telco", help="comma-separated ids")
    parser.add_argument("--job", default="meshmpc.net.check:mesh_report",
                        help="async function 'package.module:function' every party runs")
    parser.add_argument("--args", default="{}", help="JSON object of keyword arguments")
    parser.add_argument("--dir", type=Path, help="keep keys and config in this folder")
    parser.add_argument("--wan-mbps", type=float, help="emulated bandwidth per link (Mbit/s)")
    parser.add_argument("--wan-latency-ms", type=float, default=0.0,
                        help="emulated one-way latency per link (ms)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="stop every party after this many seconds")
    parser.set_defaults(func=_launch)


def _launch_args(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"--args is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UserError("--args must be a JSON object of keyword arguments, e.g. '{\"x\": 1}'")
    return value


def _launch(args: argparse.Namespace) -> int:
    parties = [check_party_name(p.strip()) for p in args.parties.split(",") if p.strip()]
    if len(parties) < 2:
        raise UserError("--parties needs at least two party ids, e.g. bank,gov")
    kwargs = _launch_args(args.args)
    check_job_arguments(args.job, kwargs)  # fail before starting any process
    wan = None
    if args.wan_mbps is not None or args.wan_latency_ms:
        wan = WanProfile(args.wan_mbps, args.wan_latency_ms)
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    results = run_local(parties, args.job, kwargs, wan=wan,
                        timeout=args.timeout, directory=args.dir)
    for party in parties:
        print(json.dumps({"party": party, "result": results[party]}, default=str))
    return 0
