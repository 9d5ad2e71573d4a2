"""One worker of a party's Ray cluster: a fresh key, a pair mesh, items run in order.

:class:`PairWorker` is a plain class that the coordinator turns into a Ray actor
(``ray.remote``), so this module imports no Ray. An actor lives for one attempt
at one group of items: :meth:`PairWorker.prepare` makes its key and picks its
port (the coordinator sends both to the partner), :meth:`PairWorker.run`
connects to the partner's worker and calls the work's target once per item,
writing a done marker after each (atomically, after the target has written its
own partition), so that after a crash the coordinators know exactly which
items are finished and redo only the others.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshmpc.net.context import Context
from meshmpc.net.errors import NetworkError
from meshmpc.net.eventloop import run as run_loop
from meshmpc.net.launch import peak_rss_mb
from meshmpc.net.local import free_ports
from meshmpc.net.tcp import TcpMesh
from meshmpc.scale.pair import Offer, fresh_worker_key, pair_config

Target = Callable[..., Awaitable[dict[str, Any]]]
"""``async def target(ctx, item, state, **args) -> result``: one item over the pair mesh;
``state`` is a dict kept across the worker's items (e.g. a protocol session)."""


@dataclass(frozen=True)
class PairWork:
    """What every worker of a job runs: a module-level target and its arguments."""

    target: Target
    done_dir: Path
    args: dict[str, Any] = field(default_factory=dict)


def marker_path(done_dir: Path, item: int) -> Path:
    return done_dir / f"item-{item:06d}.done.json"


def read_marker(done_dir: Path, item: int) -> dict[str, Any] | None:
    """An item's result if a worker finished it, else None."""
    path = marker_path(done_dir, item)
    try:
        result: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return result


def _write_marker(done_dir: Path, item: int, result: dict[str, Any]) -> None:
    path = marker_path(done_dir, item)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, path)


def node_host() -> str:
    """This Ray node's address (where the partner, or our relay, reaches the worker)."""
    import ray

    return str(ray.util.get_node_ip_address())


class PairWorker:
    """One attempt of one worker (a Ray actor; see the module docstring)."""

    def __init__(self, party: str, host: str | None = None) -> None:
        self.party = party
        self.identity = fresh_worker_key(party)
        self.host = host or node_host()
        self.port = free_ports(1, self.host)[0]

    def prepare(self) -> dict[str, Any]:
        """The worker's public key and address for its coordinator's offer."""
        return {"public_key": self.identity.public_b64, "host": self.host, "port": self.port,
                "pid": os.getpid()}

    def run(self, job_nonce: str, order: list[str], mine: dict[str, Any],
            theirs: dict[str, Any], work: PairWork, timeout_s: float,
            relayed: bool = False) -> dict[str, Any]:
        """Connect to the partner's worker and run every item of ``mine``; return the
        number of items and this process's peak memory, or the failure: its type, message
        and whether it is retryable (a lost link or timeout, not bad input)."""
        coro = self._run(job_nonce, order, Offer.from_wire(mine, self.party),
                         Offer.from_wire(theirs, self.party), work, timeout_s, relayed)
        # Ray keeps an event loop running on the actor's thread: ours gets its own thread
        with ThreadPoolExecutor(1, thread_name_prefix="meshmpc-pair") as pool:
            try:
                return pool.submit(run_loop, coro).result()
            except Exception as exc:  # sent back as text: not every error unpickles
                return {"failed": type(exc).__name__, "message": str(exc)[:1000],
                        "retryable": isinstance(exc, NetworkError | TimeoutError)}

    async def _run(self, job_nonce: str, order: list[str], mine: Offer, theirs: Offer,
                   work: PairWork, timeout_s: float, relayed: bool) -> dict[str, Any]:
        bind = (self.host, self.port) if relayed else None
        config = pair_config(job_nonce, order, mine, theirs, bind, timeout_s)
        mesh = await TcpMesh.connect(config, self.party, self.identity, on_waiting=None)
        ctx = Context(mesh, config)
        state: dict[str, Any] = {}
        failure: BaseException | None = None
        try:
            for item in mine.items:
                result = await work.target(ctx, item, state, **work.args)
                _write_marker(work.done_dir, item, result)
            await mesh.flush()
        except BaseException as exc:
            failure = exc
            raise
        finally:
            await mesh.close(failure)
        traffic = ctx.traffic()
        return {"items": len(mine.items), "peak_rss_mb": peak_rss_mb(), "pid": os.getpid(),
                "bytes_sent": traffic.bytes_sent, "bytes_received": traffic.bytes_received}
