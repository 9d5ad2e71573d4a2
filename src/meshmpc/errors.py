"""The exception hierarchy shared by every meshmpc layer.

Every error subclasses :class:`MeshMPCError` and, where one fits, the matching
builtin (``ValueError``, ``ConnectionError``, ``TimeoutError``...), so callers
can catch either the library's base error or the builtin they already handle.
"""


class MeshMPCError(Exception):
    """Base class of every error meshmpc raises on purpose."""


class ConfigError(MeshMPCError, ValueError):
    """A configuration file is missing, malformed or inconsistent.

    The message names the file and the field so the user knows what to edit.
    """

    def __init__(self, path: object, field: str, problem: str) -> None:
        self.path = str(path)
        self.field = field
        self.problem = problem
        super().__init__(f"{self.path}: field {field!r}: {problem}")


class DataError(MeshMPCError, ValueError):
    """Input data breaks its schema or cannot be read."""


def note_stage(exc: BaseException, kind: str, stage: str) -> None:
    """Remember where ``exc`` stopped the run (``kind``: "phase" or "wait"), first one wins.

    A link failure surfaces in whichever receive was waiting; the CLI prints the
    stage beside the error so an operator sees both who failed and at which step.
    """
    stages: dict[str, str] = exc.__dict__.setdefault("meshmpc_stage", {})
    stages.setdefault(kind, stage)


def stage_of(exc: BaseException) -> str | None:
    """Where the run was when ``exc`` stopped it (see :func:`note_stage`), or None."""
    stages: dict[str, str] = getattr(exc, "meshmpc_stage", {})
    parts = [stages[k] for k in ("phase", "wait") if k in stages]
    return ", ".join(parts) or None
