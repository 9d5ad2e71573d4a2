"""Validate every party's input at the start of a joint job, and stop it together.

Each party checks its *own* data on its own node (the data never moves); the
parties then exchange one bit each - passed or failed - so that a single bad
input stops the job at every party before any protocol runs, instead of one
party aborting mid-protocol while the others wait.

What it reveals: to the peers, only whether each party's input passed its
schema. The details (file, columns, rows, counts) stay with the data owner,
who gets them in a :class:`SchemaViolation`; the peers get a
:class:`PeerInputError` naming the party whose input failed. Cost: one round,
one tiny message per pair of parties.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from meshmpc.data.errors import SchemaViolation
from meshmpc.data.loaders import Source
from meshmpc.data.report import QualityReport
from meshmpc.data.validate import SchemaLike, check
from meshmpc.errors import DataError

if TYPE_CHECKING:
    from meshmpc.net.context import Context


class PeerInputError(DataError):
    """Another party's input failed validation, so the joint job stops here too."""

    def __init__(self, parties: list[str]) -> None:
        self.parties = parties
        names = ", ".join(parties)
        super().__init__(f"joint job stopped before it started: the input of party {names} "
                         f"failed its schema check on that party's node (the details are in "
                         f"that party's report)")


async def validate_party_input(ctx: Context, schema: SchemaLike, source: Source) -> QualityReport:
    """Check this party's input, then agree with every peer that all inputs passed.

    Raises :class:`SchemaViolation` (or another :class:`DataError`) at the party
    whose input is bad, and :class:`PeerInputError` at every other party.
    """
    report: QualityReport | None = None
    failure: DataError | None = None
    try:
        report = check(schema, source)
        if not report.ok:
            failure = SchemaViolation(report.path, report.problems(), report)
    except DataError as exc:
        failure = exc
    await _exchange_verdicts(ctx, failure)
    assert report is not None
    return report


async def validate_if_declared(
    ctx: Context, schema: SchemaLike | None, source: Source
) -> QualityReport | None:
    """:func:`validate_party_input` for jobs where a schema is optional.

    A party that declares no schema (``schema=None``) checks nothing and votes
    "passed", so every party still takes part in the one-round verdict exchange.
    """
    if schema is not None:
        return await validate_party_input(ctx, schema, source)
    await _exchange_verdicts(ctx, None)
    return None


def schema_beside(path: str | Path) -> Path | None:
    """``<name>.schema.toml`` next to a data file, if there is one (the loaders' convention)."""
    path = Path(path)
    candidate = path.with_name(path.name.split(".")[0] + ".schema.toml")
    return candidate if candidate.is_file() else None


async def _exchange_verdicts(ctx: Context, failure: DataError | None) -> None:
    """Tell every peer whether this party's input passed; raise if any input failed."""
    scope = ctx.scope("data.validate")
    await scope.broadcast("verdict", failure is None)
    verdicts = await scope.recv_all("verdict")
    if failure is not None:
        raise failure
    failed = [p for p in ctx.parties if p in verdicts and not verdicts[p]]
    if failed:
        raise PeerInputError(failed)
