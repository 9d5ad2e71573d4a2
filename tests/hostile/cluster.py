"""Real parties as separate processes over TCP, each with its own config file.

``HostileCluster(directory, parties)`` writes keys and one config per party
(links resume within ``resume_grace_s``, default ``GRACE_S`` to keep the suite fast)
(``route()`` points one party's view of a peer at a proxy: addresses are not
part of the config fingerprint, as with NAT). ``start(job, kwargs)`` runs
``python party.py`` per party; ``wait()`` returns a :class:`Outcome` per party
(exit code, stderr, result, seconds), ``kill(party)`` sends SIGKILL.

A job is ``"module:function"`` importable from this folder or installed
packages: ``async def job(ctx, **kwargs)`` returning something msgpack-able.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshmpc.net import codec
from meshmpc.net.config import ClusterConfig
from meshmpc.net.local import make_local_cluster

HERE = Path(__file__).resolve().parent
GRACE_S = 3.0
"""The resume grace period of hostile clusters: a cut that is not restored fails this fast."""


@dataclass
class Outcome:
    party: str
    code: int | None  # None: still running at the deadline (then killed)
    stderr: str
    result: Any
    seconds: float


class HostileCluster:
    """Keys, per-party configs and party processes under ``directory``."""

    def __init__(self, directory: Path, parties: list[str], resume_grace_s: float = GRACE_S,
                 keepalive_s: float = 0.0, keepalive_timeout_s: float = 20.0,
                 **cluster: Any) -> None:
        self.directory = directory
        self.parties = parties
        config, _ = make_local_cluster(parties, directory, **cluster)
        self.config: ClusterConfig = dataclasses.replace(
            config, resume_grace_s=resume_grace_s, keepalive_s=keepalive_s,
            keepalive_timeout_s=keepalive_timeout_s)
        self.views = {p: self.config for p in parties}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._started = 0.0

    def port(self, party: str) -> int:
        return self.config.party(party).port

    def configure(self, **changes: Any) -> None:
        """Change cluster-wide fields (e.g. handshake_timeout_s) in every party's view."""
        self.config = dataclasses.replace(self.config, **changes)
        self.views = {p: dataclasses.replace(v, **changes) for p, v in self.views.items()}

    def route(self, party: str, peer: str, port: int) -> None:
        """Make ``party`` reach ``peer`` at ``127.0.0.1:port`` (e.g. a FaultProxy)."""
        view = self.views[party]
        entries = [dataclasses.replace(e, port=port) if e.id == peer else e for e in view.parties]
        self.views[party] = dataclasses.replace(view, parties=entries)

    def _config_file(self, party: str) -> Path:
        path = self.directory / f"cluster-{party}.toml"
        view = self.views[party]
        # the bind address is this party's own entry in the shared config
        own = self.config.party(party)
        entries = [dataclasses.replace(e, listen_host=own.host, listen_port=own.port)
                   if e.id == party else e for e in view.parties]
        path.write_text(dataclasses.replace(view, parties=entries).to_toml())
        return path

    def start(self, job: str, kwargs: dict[str, Any] | None = None,
              parties: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        args = self.directory / "job-args.msgpack"
        args.write_bytes(codec.pack(kwargs or {}))
        environment = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MESHMPC_SPIN_US": "0",
                       "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
                       **(env or {})}
        self._started = time.monotonic()
        for party in parties or self.parties:
            command = [sys.executable, str(HERE / "party.py"), "--config",
                       str(self._config_file(party)), "--party", party, "--job", job,
                       "--args", str(args), "--result", str(self.directory / f"{party}.result")]
            stderr = open(self.directory / f"{party}.stderr", "wb")  # noqa: SIM115
            self.procs[party] = subprocess.Popen(command, stdout=stderr, stderr=stderr,
                                                 env=environment)

    def start_cli(self, party: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        """Run ``meshmpc ARGV --config <party's config> --party PARTY`` as ``party``'s process
        (the real command line; stderr goes to ``<party>.stderr``)."""
        if not self._started:
            self._started = time.monotonic()
        environment = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MESHMPC_SPIN_US": "0",
                       **(env or {})}
        command = [sys.executable, "-m", "meshmpc.cli", *argv, "--config",
                   str(self._config_file(party)), "--party", party]
        stderr = open(self.directory / f"{party}.stderr", "wb")  # noqa: SIM115
        self.procs[party] = subprocess.Popen(command, stdout=stderr, stderr=stderr,
                                             env=environment, cwd=self.directory)

    def kill(self, party: str) -> None:
        self.procs[party].send_signal(signal.SIGKILL)

    def wait(self, timeout: float = 60.0) -> dict[str, Outcome]:
        deadline = time.monotonic() + timeout
        outcomes = {}
        for party, proc in self.procs.items():
            try:
                code: int | None = proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                code = None
            seconds = time.monotonic() - self._started
            result_file = self.directory / f"{party}.result"
            result = codec.unpack(result_file.read_bytes()) if result_file.exists() else None
            stderr = (self.directory / f"{party}.stderr").read_text(errors="replace")
            outcomes[party] = Outcome(party, code, stderr, result, seconds)
        return outcomes

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
