"""Errors of job files and job runs; each names the file, step or party to look at."""

from __future__ import annotations

from meshmpc.errors import ConfigError, MeshMPCError


class JobFileError(ConfigError):
    """A job file is malformed or inconsistent (unknown key, unknown party, cycle...).

    The message names the file and the field (``steps[2].after``) to edit.
    """


class JobError(MeshMPCError, RuntimeError):
    """A job stopped; ``party`` is where this was raised, ``step`` the step it stopped in."""

    def __init__(self, party: str, step: str | None, message: str) -> None:
        self.party = party
        self.step = step
        super().__init__(message)


class StepFailedError(JobError):
    """This party's own component (or the writing of its artefacts) failed in ``step``."""

    def __init__(self, party: str, step: str, component: str, cause: BaseException) -> None:
        self.component = component
        super().__init__(party, step, f"party {party}: step {step!r} ({component}) failed: "
                                      f"{type(cause).__name__}: {cause}")


class PeerStepError(JobError):
    """Another party failed (or disconnected) in ``step``, so this party stopped too.

    ``culprit`` is the party whose failure stopped the job. Peers learn only
    the error's type, never its message (it may name private files or rows):
    the details are in the culprit's own error.
    """

    def __init__(self, party: str, step: str, culprit: str, reason: str) -> None:
        self.culprit = culprit
        super().__init__(party, step, f"party {party}: job stopped in step {step!r}: "
                                      f"party {culprit} {reason}")


class JobMismatchError(JobError):
    """The parties are not running the same job file (public parts differ)."""
