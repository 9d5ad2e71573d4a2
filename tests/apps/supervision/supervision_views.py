"""Run a supervision job in memory recording every message each party receives."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from meshmpc.jobs.local import run_job_in_memory
from meshmpc.net.memory import MemoryMesh

Views = dict[str, list[tuple[str, str, object]]]


def run_recorded(job: Path, parties: list[str], out: Path) -> Views:
    """{party: [(sender, tag, message), ...]} of a successful in-memory run of ``job``."""
    meshes = MemoryMesh.group(parties)
    views: Views = {p: [] for p in parties}
    for party, mesh in meshes.items():
        inner = mesh.mailbox.deliver

        def deliver(peer: str, tag: str, obj: object, _inner=inner, _log=views[party]
                    ) -> None:
            _log.append((peer, str(tag), obj))
            _inner(peer, tag, obj)

        mesh.mailbox.deliver = deliver
    results = asyncio.run(run_job_in_memory(job, out, meshes=meshes))
    assert not any(isinstance(r, BaseException) for r in results.values()), results
    return views


def step_messages(views: Views, party: str, step: str, suffix: str = ""
                  ) -> list[tuple[str, object]]:
    """(sender, message) of every message ``party`` received inside ``step``."""
    return [(peer, obj) for peer, tag, obj in views[party]
            if tag.startswith(f"step/{step}/") and tag.endswith(suffix)]


def assert_uniform_words(words: object) -> None:
    """Masked shares look like uniform 64-bit words (the plaintexts are mostly zeros)."""
    assert isinstance(words, np.ndarray)
    values = words.view(np.uint64).reshape(-1)
    assert (values == 0).mean() < 0.01
    assert abs(np.unpackbits(values.view(np.uint8)).mean() - 0.5) < 0.01
