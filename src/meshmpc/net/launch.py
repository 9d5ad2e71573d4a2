"""Run a job as N local processes over the real encrypted mesh on loopback.

:func:`run_local` generates keys and a config for the parties, starts one
``python -m meshmpc.net.launch`` worker per party, and collects each party's
result. A job is any ``async def job(ctx, **kwargs)`` importable as
``"package.module:function"``; its result must be msgpack-able (numpy arrays
allowed). If a party fails, the others see the disconnect and exit with an
error, and :func:`run_local` raises :class:`LaunchError` with each failed
party's last error lines.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import os
import resource
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from meshmpc.errors import MeshMPCError
from meshmpc.net import codec
from meshmpc.net.config import WanProfile, load_config
from meshmpc.net.context import Context
from meshmpc.net.eventloop import run
from meshmpc.net.keys import IdentityKey
from meshmpc.net.local import LOCAL_RESUME_GRACE_S, make_local_cluster
from meshmpc.net.tcp import TcpMesh
from meshmpc.userinput import UserError, explain_os_error


class LaunchError(MeshMPCError, RuntimeError):
    """One or more local parties failed; the message carries their errors."""


def resolve(target: str) -> Callable[..., Awaitable[Any]]:
    """Import ``"package.module:function"``; a :class:`UserError` says what is wrong."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise UserError(f"job {target!r} must look like 'package.module:function', "
                        f"e.g. meshmpc.net.check:mesh_report")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise UserError(f"job {target!r}: no module {exc.name!r} (check the spelling, and "
                        f"that the package is installed in this environment)") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        public = sorted(n for n in vars(module) if not n.startswith("_")
                        and inspect.iscoroutinefunction(getattr(module, n)))
        raise UserError(f"job {target!r}: module {module_name!r} has no function {attr!r}; "
                        f"its async functions are {public}")
    return fn


def check_job_arguments(target: str, kwargs: dict[str, Any]) -> None:
    """Fail before starting anything when ``kwargs`` do not fit the job.

    A job module may define ``ARGUMENT_CHECKS = {"function": check}``, where
    ``check(kwargs)`` raises a :class:`MeshMPCError` naming the bad field;
    otherwise the function's signature decides.
    """
    fn = resolve(target)
    module_name, _, attr = target.partition(":")
    checks = getattr(importlib.import_module(module_name), "ARGUMENT_CHECKS", {})
    if attr in checks:
        checks[attr](kwargs)
        return
    try:
        inspect.signature(fn).bind(None, **kwargs)
    except TypeError as exc:
        raise UserError(f"job {target!r}: {exc} (arguments given: {sorted(kwargs)})") from exc


def run_local(
    parties: Sequence[str],
    target: str,
    kwargs: dict[str, Any] | None = None,
    *,
    wan: WanProfile | None = None,
    timeout: float = 900.0,
    directory: Path | None = None,
    env: dict[str, str] | None = None,
    pin_cpus: bool = False,
    suite: str = "default",
    resume_grace_s: float | None = None,
) -> dict[str, Any]:
    """Run ``target`` once per party, each in its own process; return {party: result}.

    Each result dict (when the job returns a dict) gains ``peak_rss_mb`` and
    ``wall_s`` of that party's process. ``pin_cpus`` pins party i to CPU
    ``i mod ncpu``, as parties on separate machines would not share a core
    (benchmarks use it so the scheduler's placement does not add noise).
    ``suite`` picks the link suite ("default" or "gm") of the local cluster;
    ``resume_grace_s`` its resume grace period (None: the local default, 0: off).
    """
    with tempfile.TemporaryDirectory(prefix="meshmpc-") as tmp:
        work = Path(directory or tmp)
        config, _ = make_local_cluster(
            list(parties), work, wan=wan, suite=suite,
            resume_grace_s=LOCAL_RESUME_GRACE_S if resume_grace_s is None else resume_grace_s)
        assert config.path is not None
        args_file = work / "job-args.msgpack"
        args_file.write_bytes(codec.pack(kwargs or {}))
        ncpu = os.cpu_count() or 1
        # One BLAS thread per party: idle OpenBLAS threads busy-wait and steal the
        # cores the other parties run on.
        env = {"OPENBLAS_NUM_THREADS": "1", **(env or {})}
        if len(parties) > ncpu:  # parties share cores: busy-polling would only steal them
            env = {"MESHMPC_SPIN_US": "0", **env}
        procs = {
            party: _spawn(config.path, party, target, args_file, work, env,
                          i % ncpu if pin_cpus else None)
            for i, party in enumerate(parties)
        }
        failures = _wait_all(procs, timeout, work)
        if failures:
            raise LaunchError("local run failed:\n" + "\n".join(failures))
        return {p: codec.unpack((work / f"{p}.result").read_bytes()) for p in parties}


def _spawn(
    config: Path, party: str, target: str, args_file: Path, work: Path,
    env: dict[str, str] | None, cpu: int | None,
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "meshmpc.net.launch", "--config", str(config), "--party", party,
        "--target", target, "--args", str(args_file), "--result", str(work / f"{party}.result"),
    ]
    if cpu is not None:
        command += ["--cpu", str(cpu)]
    stderr = open(work / f"{party}.stderr", "wb")  # noqa: SIM115 - closed with the process
    environment = {**os.environ, **(env or {})}
    return subprocess.Popen(command, stdout=stderr, stderr=stderr, env=environment)


def _wait_all(procs: dict[str, subprocess.Popen[bytes]], timeout: float, work: Path) -> list[str]:
    deadline = time.monotonic() + timeout
    failures = []
    for party, proc in procs.items():
        try:
            code = proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = None
        if code != 0:
            tail = (work / f"{party}.stderr").read_text(errors="replace").strip().splitlines()
            reason = "timed out" if code is None else f"exit code {code}"
            failures.append(f"  {party} ({reason}): " + " | ".join(tail[-3:]))
    return failures


async def run_party(
    config_path: Path, party: str, key_path: Path | None, target: str, kwargs: dict[str, Any],
    measure: bool = False, connect_timeout_s: float | None = None,
    parties: Sequence[str] | None = None, quiet: bool = False,
) -> Any:
    """Connect ``party`` to the mesh described by ``config_path`` and run ``target``.

    With ``measure``, a dict result gains the job's ``wall_s`` and the
    process's ``peak_rss_mb`` (unless the job set them itself).
    ``connect_timeout_s`` overrides the config's connect timeout; ``parties``
    (this party among them) limits the links to the parties the job uses. The
    config's fingerprint is printed so operators can compare it across nodes,
    and a failure is sent to the peers as the reason the link closes. ``quiet``
    (a command's ``--quiet``) drops the "waiting for" and "connected" lines.
    """
    config = load_config(config_path)
    if connect_timeout_s is not None:
        config = dataclasses.replace(config, connect_timeout_s=connect_timeout_s)
    entry = config.party(party)
    key_file = key_path or entry.key_file or config_path.parent / f"{party}.key"
    identity = IdentityKey.load(party, key_file)
    job = resolve(target)
    mesh = await connect_mesh(config, party, identity, parties, quiet)
    if not quiet:
        print(f"{party}: connected to {', '.join(p for p in mesh.parties if p != party)}; "
              f"cluster {config.cluster_id}, config fingerprint {config.fingerprint_hex}",
              file=sys.stderr)
    failure: BaseException | None = None
    try:
        start = time.perf_counter()
        result = await job(Context(mesh, config), **kwargs)
        await mesh.flush()
        if measure and isinstance(result, dict):
            result.setdefault("wall_s", time.perf_counter() - start)
            result.setdefault("peak_rss_mb", peak_rss_mb())
        return result
    except BaseException as exc:
        failure = exc
        raise
    finally:
        await mesh.close(failure)


def listen_address(config: Any, party: str) -> str:
    """The address ``party`` binds (``listen`` when the config has it, else ``address``)."""
    host, port = config.party(party).bind
    return f"{host}:{port}"


async def connect_mesh(config: Any, party: str, identity: IdentityKey,
                       parties: Sequence[str] | None = None, quiet: bool = False) -> TcpMesh:
    """:meth:`TcpMesh.connect`, with socket errors a user can fix as one-line advice.

    ``quiet``: no "waiting for ..." lines while the peers come up.
    """
    try:
        if quiet:
            return await TcpMesh.connect(config, party, identity, parties=parties,
                                         on_waiting=None)
        return await TcpMesh.connect(config, party, identity, parties=parties)
    except OSError as exc:
        advice = explain_os_error(exc, listen_address(config, party))
        if advice is None:
            raise
        raise UserError(f"party {party}: {advice}") from exc


def peak_rss_mb() -> float:
    """Peak resident memory of this process since its exec, in MiB.

    VmHWM from /proc where there is one: Linux keeps ``ru_maxrss`` across fork and
    exec, so a party spawned by a large process (a benchmark holding generated data)
    reported at least that process's size. ``ru_maxrss`` elsewhere.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _worker(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meshmpc.net.launch")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--party", required=True)
    parser.add_argument("--key", type=Path)
    parser.add_argument("--target", required=True)
    parser.add_argument("--args", type=Path)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--cpu", type=int, help="pin this party to one CPU")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    kwargs = codec.unpack(args.args.read_bytes()) if args.args else {}
    from meshmpc.data.protect import install_log_masking, mask_text  # the party's own logs

    install_log_masking()
    try:
        result = run(run_party(args.config, args.party, args.key, args.target, kwargs, True))
    except Exception as exc:
        if os.environ.get("MESHMPC_DEBUG") == "1":
            traceback.print_exc()
        print(f"party {args.party}: {type(exc).__name__}: {mask_text(str(exc))}",
              file=sys.stderr)
        return 1
    tmp = args.result.with_suffix(".tmp")
    tmp.write_bytes(codec.pack(result))
    tmp.replace(args.result)
    return 0


if __name__ == "__main__":
    sys.exit(_worker())
