"""Progress bars on stderr for long steps: rows done, rate and time left (tqdm).

Commands show them when stderr is a terminal and ``--quiet`` is not given;
in a log (systemd, CI) they stay silent so the journal holds only events.
"""

from __future__ import annotations

import sys
from types import TracebackType

from tqdm import tqdm


class RowProgress:
    """A bar counting rows against an estimated total (rate and ETA from tqdm)."""

    def __init__(self, label: str, total: int | None, enabled: bool) -> None:
        self._bar = tqdm(total=total or None, desc=label, unit=" rows", unit_scale=True,
                         file=sys.stderr, disable=not enabled, leave=False,
                         dynamic_ncols=True, mininterval=0.5)

    def update(self, rows: int) -> None:
        self._bar.update(rows)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> RowProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def wanted(quiet: bool = False) -> bool:
    """Show progress: stderr is a terminal and the user did not ask for quiet."""
    return not quiet and sys.stderr.isatty()
