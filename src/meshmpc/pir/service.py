"""``pir serve`` as a long-running service, and the client side that dials it.

A PIR server is a service, not a one-off job: it keeps listening, serves each
client that connects (one after another, and several clients at once, each
over its own authenticated link), watches its database file and swaps in a
rebuilt version without stopping (requests in flight finish on the old
version; a client that asks about an old version is told to refresh).

* :class:`ServiceMesh` is the server's end: it listens only, accepts any
  configured party named as a client, and starts one session per
  authenticated link. A client party connecting twice at once is refused the
  second time; :class:`ClientMesh` retries such a refusal until the first
  session ends, so clients queue instead of failing.
* :class:`ClientMesh` is the client's end: it dials the server only, whatever
  the order of the parties in the config (the other parties of the cluster
  need not run).

Before the PIR requests, the server tells the client its key normalisation
rule (:mod:`meshmpc.data.keynorm`); a client with another rule stops with an
error naming the difference, since its keys would silently never match.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from meshmpc.data.keynorm import KeyRule, normalise
from meshmpc.data.loaders import load_table
from meshmpc.net import Context
from meshmpc.net.errors import ConnectTimeoutError, HandshakeRejected, NetworkError
from meshmpc.net.keys import IdentityKey
from meshmpc.net.link import Link
from meshmpc.net.mesh import SubgroupMesh
from meshmpc.net.stats import LinkStats
from meshmpc.net.tcp import WAIT_REPORT_S, TcpMesh
from meshmpc.pir.api import database_from_table
from meshmpc.pir.server import PirServer
from meshmpc.pir.table import PirDatabase
from meshmpc.progress import Progress
from meshmpc.userinput import UserError

HELLO = "pir/service-hello"
BUSY_RETRY_S = 0.2


def _reset_peer(mesh: TcpMesh, peer: str) -> None:
    """Forget a finished session's failure and leftovers, so the peer can come back."""
    mesh.mailbox.forget(peer)
    mesh.stats[peer] = LinkStats()


class ServiceMesh(TcpMesh):
    """The server's end: listen forever, one session per authenticated client link.

    It keeps the mesh's pre-authentication limits (the accept path, pending
    handshake cap, deadlines) and decides in ``check_claim`` who may connect:
    a listed client with no session running. A refused client learns only
    that it was rejected (before authentication nothing more is said) and
    retries while its deadline lasts.
    """

    def __init__(self, config: Any, party: str, identity: IdentityKey,
                 clients: list[str]) -> None:
        super().__init__(config, party, identity, on_waiting=None)
        self.clients = list(clients)
        self.sessions: asyncio.Queue[str] = asyncio.Queue()

    async def start(self) -> None:
        """Listen only: clients dial the server."""
        loop = asyncio.get_running_loop()
        host, port = self.config.party(self.party).bind
        self._server = await loop.create_server(self._accept, host=host, port=port,
                                                reuse_address=True)

    def check_claim(self, peer: str, dialer: bool) -> None:
        if dialer or peer == self.party or peer not in self.config.party_ids:
            raise HandshakeRejected(peer, "claims a party that cannot be a client here")
        if peer not in self.clients:
            raise HandshakeRejected(peer, f"is not a client of this PIR server (clients: "
                                          f"{self.clients})")
        if peer in self.links:
            raise HandshakeRejected(peer, "busy: a session with this party is running")

    def link_authenticated(self, link: Link) -> bool:
        """A new session (queued for serving) or a resumed one (carries on as it was)."""
        peer = link.peer
        assert peer is not None and link.session is not None
        self._pending.pop(link, None)
        if peer in self.links:
            return False
        resumed = link.session is self.peer_sessions.get(peer)
        if not resumed:
            _reset_peer(self, peer)
        link.registered = True
        link.stats = self.stats[peer]
        self.links[peer] = link
        if not resumed:
            self.peer_sessions[peer] = link.session
            self.sessions.put_nowait(peer)
        return True

    async def end_session(self, peer: str) -> None:
        """Close the session (and its link) and make room for the peer's next one."""
        session = self.peer_sessions.pop(peer, None)
        if session is not None:
            with contextlib.suppress(Exception):
                await session.close()
        link = self.links.get(peer)
        if link is not None:
            with contextlib.suppress(Exception):
                await link.close()
            self.links.pop(peer, None)
            self.connections.discard(link)


class ClientMesh(TcpMesh):
    """The client's end: dial the server only; retry while it is busy with us."""

    def __init__(self, config: Any, party: str, identity: IdentityKey, server: str,
                 on_waiting: Callable[[str], None] | None = None) -> None:
        super().__init__(config, party, identity, parties=[party, server], on_waiting=None)
        self.server = server
        self.hello: Any = None
        self.report_waiting = on_waiting

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        entry = self.config.party(self.server)
        host, port = entry.host, entry.port
        started = loop.time()
        deadline = started + self.connect_timeout_s
        last, reported = "", started
        while loop.time() < deadline:
            if self.report_waiting is not None and loop.time() - reported >= WAIT_REPORT_S:
                reported = loop.time()
                self.report_waiting(f"waiting for {self.server} at {host}:{port}, "
                                    f"{reported - started:.0f} s of "
                                    f"{self.connect_timeout_s:g} s (last: {last or 'none'})")
            link: Any = None
            try:
                _, link = await loop.create_connection(
                    lambda: Link(self, dialer=True, expected_peer=self.server), host, port)
                await link.ready
                # accepted only once the server opens the session
                self.hello = await self.recv(self.server, HELLO)
                return
            except (OSError, NetworkError) as exc:
                last = str(exc)
                if link is not None:
                    with contextlib.suppress(Exception):
                        await link.close()
                self.links.pop(self.server, None)
                self.peer_sessions.pop(self.server, None)
                _reset_peer(self, self.server)
                await asyncio.sleep(BUSY_RETRY_S)
        raise ConnectTimeoutError(self.server, f"no session with {host}:{port} within "
                                               f"{self.connect_timeout_s:g} s (last: {last}; a "
                                               f"server that does not list this party as "
                                               f"--client, or is busy with it, refuses the link)")

    def check_claim(self, peer: str, dialer: bool) -> None:
        if not dialer or peer != self.server:
            raise HandshakeRejected(peer, "a PIR client accepts only its own dial to the server")

    def link_authenticated(self, link: Link) -> bool:
        """The session's first connection, or one resuming it after a drop."""
        if link.peer != self.server or self.server in self.links:
            return False
        link.registered = True
        link.stats = self.stats[self.server]
        self.links[self.server] = link
        assert link.session is not None
        self.peer_sessions[self.server] = link.session
        return True


@dataclass(frozen=True)
class TextOptions:
    """How CSV files are decoded: encoding and delimiter (None: the loader's defaults)."""

    encoding: str | None = None
    delimiter: str | None = None


def _load(path: str, text: TextOptions) -> Any:
    options: dict[str, Any] = {"encoding": text.encoding, "delimiter": text.delimiter}
    if path.lower().removesuffix(".gz").endswith((".csv", ".tsv", ".txt")):
        options["text"] = True  # values as written: 0755... stays a string
    return load_table(path, **options)


def _rows(mask: Any) -> list[int]:
    """1-based row numbers (data rows, header not counted) of the first hits."""
    return [int(i) + 1 for i in np.flatnonzero(mask)[:10]]


def load_rule_database(path: str, key: str, rule: KeyRule, record_bytes: int | None,
                       membership: bool, text: TextOptions | None = None,
                       progress: Progress | None = None) -> PirDatabase:
    """Read the risk list, normalise its keys by the shared rule, build the database.

    Empty and repeated keys (after normalisation) are errors naming the rows:
    a risk list with two records under one key is ambiguous. ``progress``
    shows the reading and the build (the OPRF of every key, with its ETA).
    """
    progress = progress or Progress.off()
    started = time.perf_counter()
    progress.stage(f"reading {path}")
    table = _load(path, text or TextOptions())
    progress.stage(_rate(f"read {table.num_rows:,} rows", table.num_rows,
                         time.perf_counter() - started))
    if key not in table.column_names:
        raise UserError(f"{path}: no key column {key!r}; columns are {table.column_names}")
    keys = normalise(table.column(key), rule)
    empty = pc.or_kleene(pc.is_null(keys), pc.equal(keys, "")).fill_null(True)
    empty_np = empty.to_numpy(zero_copy_only=False)
    if empty_np.any():
        raise UserError(f"{path}: column {key!r}: {int(empty_np.sum())} rows have an empty key "
                        f"(rows {_rows(empty_np)}); fill or remove them")
    counts = pc.value_counts(keys)
    repeated = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    if len(repeated):
        mask = pc.is_in(keys, value_set=repeated).to_numpy(zero_copy_only=False)
        raise UserError(f"{path}: column {key!r}: {len(repeated)} keys occur more than once "
                        f"(rows {_rows(mask)}); keep one record per key")
    table = table.set_column(table.column_names.index(key), key, keys)
    started = time.perf_counter()
    with progress.phase("building the table: OPRF of every key", table.num_rows,
                        "keys") as phase:
        database = database_from_table(table, key, record_bytes, membership, tick=phase.advance)
    params = database.params
    progress.stage(_rate(f"table built: {params.n_records:,} records, version {params.version}, "
                         f"{database.hint.nbytes / 2**20:,.1f} MiB hint", params.n_records,
                         time.perf_counter() - started))
    return database


def _rate(text: str, count: int, seconds: float) -> str:
    """``text in 1.20 s (830,000/s)``: a finished step with its throughput."""
    per_s = f", {count / seconds:,.0f}/s" if seconds > 0 and count else ""
    return f"{text} in {seconds:.2f} s{per_s}"


@dataclass
class PirService:
    """The database, its watcher and the session loop of one serving party."""

    db_path: str
    key: str
    rule: KeyRule
    record_bytes: int | None = None
    membership: bool = False
    quiet: bool = False
    text: TextOptions = field(default_factory=lambda: TextOptions())
    served: dict[str, int] = field(default_factory=dict)
    admit: Any = None  # a meshmpc.pir.server.LookupGate (the node's grant caps), or None
    progress: Progress = field(init=False)
    stats: ServingStats = field(init=False)

    def __post_init__(self) -> None:
        self.progress = Progress("pir serve", not self.quiet)
        self.stats = ServingStats()

    def log(self, text: str) -> None:
        """One event line on stderr (hence the journal), unless quiet."""
        self.progress.stage(text)

    def hello(self) -> dict[str, Any]:
        """What a client learns first: the key rule, and whether batches need admission
        (dataset and component of the node's gate), so a client without purpose or
        consent stops before asking anything."""
        hello: dict[str, Any] = {"rule": self.rule.agreement()}
        if self.admit is not None:
            hello["admission"] = {"dataset": getattr(self.admit, "dataset", None),
                                  "component": getattr(self.admit, "component", None)}
        return hello

    def build(self) -> PirDatabase:
        """Read the list and build its database, showing the progress."""
        return load_rule_database(self.db_path, self.key, self.rule, self.record_bytes,
                                  self.membership, self.text, self.progress)

    async def run(self, mesh: ServiceMesh, sessions: int | None, watch_s: float,
                  database: PirDatabase | None = None) -> dict:
        """Serve until ``sessions`` sessions ended (forever when None).

        ``database``: the list already built (the CLI builds it before listening,
        so that a bad list fails at once); else it is built now.
        """
        started = time.perf_counter()
        if database is None:
            database = await asyncio.to_thread(self.build)
        server = PirServer(database, admit=self.admit)
        self.log(f"serving {server.database.params.n_records:,} records (version "
                 f"{server.database.params.version}); clients: {', '.join(mesh.clients)}")
        watcher = asyncio.create_task(self._watch(server, watch_s))
        running: set[asyncio.Task[None]] = set()
        done = 0
        try:
            while sessions is None or done < sessions:
                peer = await mesh.sessions.get()
                task = asyncio.create_task(self._session(mesh, server, peer))
                running.add(task)
                task.add_done_callback(running.discard)
                if sessions is not None:
                    await task
                    done += 1
        finally:
            watcher.cancel()
            for task in list(running):
                task.cancel()
            await asyncio.gather(watcher, *running, return_exceptions=True)
        return {"sessions": done, "requests": dict(self.served),
                "version": server.database.params.version,
                "wall_s": round(time.perf_counter() - started, 3)}

    async def _session(self, mesh: ServiceMesh, server: PirServer, peer: str) -> None:
        ctx = Context(SubgroupMesh(mesh, [mesh.party, peer]), mesh.config)
        self.log(f"session with {peer} started")
        session = SessionCount(time.perf_counter())
        keys = self.progress.phase(f"session with {peer}: keys looked up", None, "keys")

        def count(op: str, n: int) -> None:
            session.requests += 1
            session.keys += n
            keys.advance(n)

        try:
            await ctx.send(peer, HELLO, self.hello())
            await server.serve(ctx, peer, count)
            self.log(f"session with {peer} ended: {session.describe()}")
        except NetworkError as exc:
            self.log(f"session with {peer} ended: {exc} ({session.describe()})")
        finally:
            self.served[peer] = self.served.get(peer, 0) + session.requests
            self.stats.add(session)
            self.log(self.stats.describe())
            await mesh.end_session(peer)

    async def _watch(self, server: PirServer, every_s: float) -> None:
        """Rebuild and swap when the file's modification time changes."""
        if every_s <= 0 or "://" in self.db_path:
            return
        path = Path(self.db_path)
        seen = path.stat().st_mtime_ns
        while True:
            await asyncio.sleep(every_s)
            with contextlib.suppress(FileNotFoundError):
                now = path.stat().st_mtime_ns
                if now != seen:
                    seen = now
                    try:
                        server.swap(await asyncio.to_thread(self.build))
                    except Exception as exc:  # noqa: BLE001 - keep serving the old version
                        self.log(f"reload failed, still serving the previous version: {exc}")
                        continue
                    self.log(f"reloaded {self.db_path}: version "
                             f"{server.database.params.version}, "
                             f"{server.database.params.n_records} records")


@dataclass
class SessionCount:
    """What one client session asked: requests and keys (OPRF points), since ``started``."""

    started: float
    requests: int = 0
    keys: int = 0

    def describe(self) -> str:
        seconds = time.perf_counter() - self.started
        rate = (f"; {self.requests / seconds:,.1f} requests/s, {self.keys / seconds:,.0f} keys/s"
                if seconds > 0 else "")
        return f"{self.requests} requests, {self.keys:,} keys in {seconds:.2f} s{rate}"


@dataclass
class ServingStats:
    """Totals since the service started: sessions ended, requests and keys."""

    started: float = field(default_factory=time.perf_counter)
    sessions: int = 0
    requests: int = 0
    keys: int = 0

    def add(self, session: SessionCount) -> None:
        self.sessions += 1
        self.requests += session.requests
        self.keys += session.keys

    def describe(self) -> str:
        hours = (time.perf_counter() - self.started) / 3600
        return (f"served {self.sessions} sessions, {self.requests} requests, {self.keys:,} keys "
                f"since start ({hours:.2f} h)")


def check_server_rule(hello: Any, server: str, rule: KeyRule) -> None:
    """Compare the server's key rule with ours; raise naming the first difference."""
    theirs = hello.get("rule", {}) if isinstance(hello, dict) else {}
    for name, mine in rule.agreement().items():
        if theirs.get(name) != mine:
            option = {"trim": "--no-trim", "casefold": "--casefold",
                      "halfwidth": "--no-halfwidth"}[name]
            raise UserError(f"key rule differs from server {server}: {name} is "
                            f"{theirs.get(name)} there and {mine} here; give both the same "
                            f"{option} setting")


def normalised_keys(path: str, column: str | None, rule: KeyRule,
                    text: TextOptions | None = None, quiet: bool = False) -> list[bytes]:
    """The keys to ask about (``column``, or the file's only column), normalised.

    Empty keys are dropped and repeated ones asked once (in first-seen order),
    with a warning on stderr naming the first rows (1-based).
    """
    return keys_with_rows(path, column, rule, text, quiet)[0]


def keys_with_rows(path: str, column: str | None, rule: KeyRule,
                   text: TextOptions | None = None, quiet: bool = False
                   ) -> tuple[list[bytes], list[int], int]:
    """:func:`normalised_keys`, each key's first row (0-based) and the file's row count
    (a consent reference per row is matched to its key by row)."""
    table = _load(path, text or TextOptions())
    name = column or (table.column_names[0] if table.num_columns == 1 else None)
    if name is None or name not in table.column_names:
        raise UserError(f"{path}: name the key column with --key-column (columns: "
                        f"{table.column_names})")
    values = normalise(table.column(name), rule)
    empty = pc.or_kleene(pc.is_null(values), pc.equal(values, "")).fill_null(True)
    empty_np = empty.to_numpy(zero_copy_only=False)
    rows = pa.array(np.flatnonzero(~empty_np), pa.int64())
    present = pa.table({"key": values.take(rows), "row": rows})
    firsts = present.group_by("key", use_threads=False).aggregate([("row", "min")])
    firsts = firsts.sort_by("row_min")
    repeated = ~pc.is_in(present.column("row"), value_set=firsts.column("row_min")) \
        .to_numpy(zero_copy_only=False)
    if not quiet and (empty_np.any() or repeated.any()):
        parts = []
        if empty_np.any():
            parts.append(f"{int(empty_np.sum())} empty keys skipped (rows {_rows(empty_np)})")
        if repeated.any():
            again = [int(r) + 1 for r in present.column("row").to_numpy()[repeated][:10]]
            parts.append(f"{int(repeated.sum())} repeated keys asked once (rows {again})")
        sys.stderr.write(f"pir query: warning: {path}: {'; '.join(parts)}\n")
    return ([v.encode() for v in firsts.column("key").to_pylist()],
            [int(r) for r in firsts.column("row_min").to_pylist()], table.num_rows)
