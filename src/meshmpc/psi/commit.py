"""The end of a PSI job as a two-phase commit, and ``meshmpc psi reconcile``.

A PSI job must not end with one party holding its result and another with
nothing. So outputs appear in two phases:

1. *prepare*: each party writes its output completely under a temporary name
   and records ``prepared`` in its journal; then it tells every peer whether
   that worked (its *vote*);
2. *commit*: a party that receives a "yes" from every peer renames its file
   into place and records ``committed``; any "no" makes every party delete its
   temporary file (``aborted``) and fail with the reason the peer gave.

A party that loses a link after voting "yes" but before hearing every vote
cannot know whether its peers committed. It keeps its output beside the target
as ``<name>.in-doubt`` with the journal entry still ``prepared``, and exits with
an error saying so. ``meshmpc psi reconcile`` later asks the peers for their
journal states: if every party of the job prepared (or committed), every
party's output is complete and the in-doubt file is committed; if any party
has no record or aborted, nobody can have committed and it is deleted.

The journal (one small JSON file per job, in ``$MESHMPC_STATE_DIR`` or
``~/.local/state/meshmpc/psi``) holds no data, only the job id, parties,
state and file names. What it reveals to peers: one vote per party (whether
its output was written) and, during reconcile, the states of the jobs it
shares with them. Cost: one extra round per job.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from meshmpc.net import Context
from meshmpc.net.errors import NetworkError
from meshmpc.psi.errors import PsiError
from meshmpc.psi.io import TableWriter

PREPARED, COMMITTED, ABORTED = "prepared", "committed", "aborted"
IN_DOUBT_SUFFIX = ".in-doubt"
MAX_REPORTED = 10_000


class PsiInDoubtError(PsiError):
    """The link was lost between the two commit phases: the output is kept in doubt."""


def state_dir(override: str | Path | None = None) -> Path:
    """Where the commit journal lives (``--state-dir``, ``$MESHMPC_STATE_DIR`` or ~/.local)."""
    if override is not None:
        return Path(override)
    env = os.environ.get("MESHMPC_STATE_DIR")
    if env:
        return Path(env)
    return Path.home() / ".local" / "state" / "meshmpc" / "psi"


@dataclass
class JournalEntry:
    """One job's commit state at this party."""

    job_id: str
    party: str
    parties: list[str]
    state: str
    output: str | None = None
    pending: str | None = None
    updated: float = 0.0

    def save(self, directory: Path) -> None:
        """Write atomically, so a crash never leaves half an entry."""
        directory.mkdir(parents=True, exist_ok=True)
        self.updated = time.time()
        path = directory / f"{self.party}-{self.job_id}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)), encoding="utf-8")
        os.replace(tmp, path)


def load_journal(directory: Path, party: str) -> dict[str, JournalEntry]:
    """``party``'s journal entries in ``directory`` by job id (unreadable ones skipped)."""
    entries: dict[str, JournalEntry] = {}
    if not directory.is_dir():
        return entries
    for path in sorted(directory.glob(f"{party}-*.json")):
        with contextlib.suppress(OSError, ValueError, TypeError):
            entry = JournalEntry(**json.loads(path.read_text(encoding="utf-8")))
            entries[entry.job_id] = entry
    return entries


async def agree_job_id(ctx: Context, parties: list[str]) -> str:
    """A job id every party computes alike: the hash of one fresh nonce per party."""
    scope = ctx.subgroup(parties).scope("psi.commit")
    nonce = secrets.token_hex(16)
    await scope.broadcast("nonce", nonce)
    theirs = await scope.recv_all("nonce")
    joined = ",".join(sorted([nonce, *(str(v) for v in theirs.values())]))
    return hashlib.sha256(joined.encode()).hexdigest()[:32]


@dataclass
class Commit:
    """One party's part in the two-phase commit of a job's outputs."""

    ctx: Context
    parties: list[str]
    job_id: str
    directory: Path

    async def run(self, writer: TableWriter | None) -> Path | None:
        """Prepare ``writer``'s file, vote, and commit or abort; return the output path."""
        entry = JournalEntry(self.job_id, self.ctx.party, self.parties, PREPARED,
                             str(writer.path) if writer else None,
                             str(writer.tmp) if writer else None)
        reason = self._prepare(writer, entry)
        scope = self.ctx.subgroup(self.parties).scope("psi.commit")
        await scope.broadcast("vote", {"ok": reason is None, "reason": reason or ""})
        try:
            votes = await scope.recv_all("vote")
        except NetworkError as exc:
            raise self._in_doubt(writer, entry, exc) from exc
        refused = {p: v for p, v in votes.items() if not (isinstance(v, dict) and v.get("ok"))}
        if reason is not None or refused:
            self._abort(writer, entry)
            if reason is not None:
                raise PsiError(f"party {self.ctx.party}: could not write its output: {reason}")
            peer, vote = next(iter(refused.items()))
            detail = vote.get("reason") if isinstance(vote, dict) else "no vote"
            raise PsiError(f"party {peer} could not write its output ({detail}); no party "
                           f"keeps an output of this job")
        return self._commit(writer, entry)

    def _prepare(self, writer: TableWriter | None, entry: JournalEntry) -> str | None:
        if writer is None:
            entry.save(self.directory)
            return None
        try:
            writer.finish()
            entry.save(self.directory)
        except (OSError, ValueError) as exc:  # disk full, unwritable, bad value
            writer.abort()
            return f"{type(exc).__name__}: {exc}"
        return None

    def _commit(self, writer: TableWriter | None, entry: JournalEntry) -> Path | None:
        path = writer.publish() if writer is not None else None
        entry.state = COMMITTED
        entry.save(self.directory)
        return path

    def _abort(self, writer: TableWriter | None, entry: JournalEntry) -> None:
        if writer is not None:
            writer.abort()
        entry.state = ABORTED
        with contextlib.suppress(OSError):
            entry.save(self.directory)

    def _in_doubt(self, writer: TableWriter | None, entry: JournalEntry,
                  exc: Exception) -> PsiInDoubtError:
        if writer is None:
            return PsiInDoubtError(f"party {self.ctx.party}: lost the link before every party "
                                   f"confirmed ({exc}); this party has no output to settle")
        kept = in_doubt_path(writer.path)
        os.replace(writer.tmp, kept)
        entry.pending = str(kept)
        entry.save(self.directory)
        peers = " ".join(f"--peer {p}" for p in self.parties if p != self.ctx.party)
        return PsiInDoubtError(
            f"party {self.ctx.party}: lost the link before every party confirmed ({exc}); "
            f"the output is kept in doubt as {kept}: run 'meshmpc psi reconcile --config ... "
            f"--party {self.ctx.party} {peers}' with the peers to settle it")


def in_doubt_path(target: Path) -> Path:
    """Where an in-doubt output waits: ``<name>.in-doubt`` beside the target."""
    return target.with_name(target.name + IN_DOUBT_SUFFIX)


def decide(entry: JournalEntry, states: dict[str, str | None]) -> str | None:
    """COMMITTED, ABORTED, or None (still in doubt) for an in-doubt entry.

    ``states`` maps each peer to its journal state for the job (None: no record).
    A party records ``prepared`` before it votes, so "every party prepared or
    committed" means every vote was "yes"; a missing record or ``aborted``
    means some party never voted yes, so nobody committed.
    """
    others = [p for p in entry.parties if p != entry.party]
    if any(p in states and states[p] in (None, ABORTED) for p in others):
        return ABORTED
    if all(states.get(p) in (PREPARED, COMMITTED) for p in others):
        return COMMITTED
    return None


def settle(entry: JournalEntry, outcome: str, directory: Path) -> str | None:
    """Rename (commit) or delete (abort) the in-doubt file; return the output path."""
    pending = Path(entry.pending) if entry.pending else None
    if outcome == COMMITTED and pending is not None and entry.output:
        os.replace(pending, entry.output)
    elif pending is not None:
        with contextlib.suppress(FileNotFoundError):
            pending.unlink()
    entry.state = outcome
    entry.pending = None
    entry.save(directory)
    return entry.output if outcome == COMMITTED else None


async def reconcile_job(ctx: Context, peers: list[str],
                        state_dir_path: str | None = None) -> dict[str, Any]:
    """Launcher entry of ``meshmpc psi reconcile``: settle in-doubt outputs with ``peers``."""
    directory = state_dir(state_dir_path)
    journal = load_journal(directory, ctx.party)
    group = ctx.subgroup([p for p in ctx.parties if p == ctx.party or p in peers])
    scope = group.scope("psi.reconcile")
    for peer in group.peers:
        shared = {j: e.state for j, e in journal.items() if peer in e.parties}
        latest = sorted(shared, key=lambda j: journal[j].updated)[-MAX_REPORTED:]
        await scope.send(peer, "states", {j: shared[j] for j in latest})
    reports = await scope.recv_all("states")
    settled: dict[str, str | None] = {}
    for job_id, entry in journal.items():
        if entry.state != PREPARED:
            continue
        states = {p: (r.get(job_id) if isinstance(r, dict) else None) for p, r in reports.items()}
        outcome = decide(entry, states)
        if outcome is not None:
            settle(entry, outcome, directory)
            settled[job_id] = outcome
    in_doubt = [j for j, e in journal.items() if e.state == PREPARED]
    return {"party": ctx.party, "settled": settled, "still_in_doubt": in_doubt}
