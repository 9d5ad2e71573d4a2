"""The attacker process: hostile connections against mesh ports, with no key.

Run as ``python attacker.py --target 127.0.0.1:7001 [--target ...] --count N
--concurrency C --modes hello,garbage,slowloris,oversize,halfopen,authjunk``.
It cycles through the modes and targets and prints one JSON line of counts
at the end. Modes:

* ``hello``: a well-formed HELLO claiming a pinned party (``--claim``), then
  a disconnect;
* ``authjunk``: a well-formed HELLO claiming a party, then a random AUTH;
* ``garbage``: random bytes, then a disconnect;
* ``oversize``: a header announcing a 16 MiB record, then a trickle of bytes;
* ``slowloris``: one byte every ``--trickle-s`` seconds, until refused;
* ``halfopen``: connect and stay silent, until refused.

Every connection is given up after ``--hold-s`` seconds; a refused connection
is retried for ``--wait-s`` seconds (so start-up is attacked too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import struct
import sys

HEADER = struct.Struct("<IQB")
MODES = ("hello", "authjunk", "garbage", "oversize", "slowloris", "halfopen")


def fake_hello(claim: str) -> bytes:
    name = claim.encode()
    body = b"MMPC" + bytes([2]) + os.urandom(64) + bytes([len(name)]) + name
    return HEADER.pack(len(body), 0, 1) + body


_SEEN: set[tuple[str, int]] = set()


async def connect(host: str, port: int, wait_s: float
                  ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """Open a connection, retrying refusals for ``wait_s`` until the target has been
    seen listening once (it may be starting; once it has stopped, refusals are final)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + wait_s
    while True:
        try:
            connection = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
            _SEEN.add((host, port))
            return connection
        except (OSError, TimeoutError):
            if loop.time() > end or (host, port) in _SEEN:
                return None
            await asyncio.sleep(0.05)


async def attack(host: str, port: int, mode: str, claim: str, hold_s: float,
                 trickle_s: float, wait_s: float = 0.0) -> str:
    connection = await connect(host, port, wait_s)
    if connection is None:
        return "refused"
    reader, writer = connection
    try:
        if mode == "hello":
            writer.write(fake_hello(claim))
        elif mode == "authjunk":
            writer.write(fake_hello(claim) + HEADER.pack(64, 0, 2) + os.urandom(64))
        elif mode == "garbage":
            writer.write(os.urandom(1 + os.urandom(1)[0] * 16))
        elif mode == "oversize":
            writer.write(HEADER.pack(16 << 20, 0, 1) + os.urandom(1000))
        if mode in ("oversize", "slowloris", "halfopen"):
            return await _hold(reader, writer, mode == "slowloris", hold_s, trickle_s)
        await writer.drain()
        return "sent"
    except OSError:
        return "reset"
    finally:
        writer.transport.abort()


async def _hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, trickle: bool,
                hold_s: float, trickle_s: float) -> str:
    loop = asyncio.get_running_loop()
    end = loop.time() + hold_s
    while loop.time() < end:
        if trickle:
            writer.write(os.urandom(1))
        try:
            data = await asyncio.wait_for(reader.read(4096), trickle_s)
        except TimeoutError:
            continue
        if not data:
            return "closed_by_target"
    return "held"


async def main(args: argparse.Namespace) -> dict[str, int]:
    targets = []
    for t in args.target:
        host, _, port = t.rpartition(":")
        targets.append((host, int(port)))
    modes = args.modes.split(",")
    claims = args.claim.split(",")
    sem = asyncio.Semaphore(args.concurrency)
    counts: dict[str, int] = {}

    async def one(i: int) -> None:
        async with sem:
            host, port = targets[i % len(targets)]
            mode = modes[(i // len(targets)) % len(modes)]
            outcome = await attack(host, port, mode, claims[i % len(claims)], args.hold_s,
                                   args.trickle_s, args.wait_s)
            key = f"{mode}:{outcome}"
            counts[key] = counts.get(key, 0) + 1

    await asyncio.gather(*(one(i) for i in range(args.count)))
    counts["total"] = args.count
    return counts


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", action="append", required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--claim", default="bank")
    parser.add_argument("--hold-s", type=float, default=10.0)
    parser.add_argument("--trickle-s", type=float, default=0.5)
    parser.add_argument("--wait-s", type=float, default=20.0,
                        help="retry refused connections this long (targets starting up)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse(sys.argv[1:])))), flush=True)
