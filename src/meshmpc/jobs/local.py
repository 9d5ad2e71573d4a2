"""Ways to run a whole job: local processes, one node of a cluster, or in memory.

- :func:`run_job_local`: every party as its own process over the encrypted
  mesh on loopback (generated keys and cluster config; ``meshmpc job run``).
- :func:`run_job_node`: this node's party only, over the cluster in
  ``cluster.toml`` (``meshmpc job run --party P --config cluster.toml``).
- :func:`run_job_in_memory`: all parties in one process over the in-memory
  mesh (tests; same runner, same messages).

Artefacts are sealed under each party's vault key (:mod:`meshmpc.data.vault`):
local runs keep the keys in :func:`~meshmpc.data.vault.default_vault_dir`
(``$MESHMPC_VAULT_DIR``, outside ``out/``), a cluster run beside the party's
identity key (``bank.key`` -> ``bank.vault``; on a node ``keys/bank.vault``,
made by ``meshmpc node init``). A missing key is made on the first run;
in-memory runs (tests) seal only when given ``vault_dir``.

The job is parsed and checked before any process starts; every process parses
it again (same checks) from the same mapping, with relative paths resolved
against the same folder.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from meshmpc.data.vault import Vault, default_vault_dir, vault_key_beside
from meshmpc.jobs.progress import FileProgress, ProgressMonitor, ProgressSink, TqdmProgress
from meshmpc.jobs.registry import ComponentRef, ComponentRegistry, overrides_for_processes
from meshmpc.jobs.runner import run_party_job
from meshmpc.jobs.spec import JobSpec, load_job
from meshmpc.net import Context
from meshmpc.net.config import WanProfile, load_config
from meshmpc.net.eventloop import run as run_loop
from meshmpc.net.launch import run_local, run_party
from meshmpc.net.memory import MemoryMesh
from meshmpc.net.mesh import Mesh

JobSource = str | Path | Mapping[str, Any]
ENTRY = "meshmpc.jobs.local:party_entry"


def prepare(job: JobSource, components: Mapping[str, ComponentRef] | None = None,
            base_dir: str | Path | None = None) -> tuple[JobSpec, dict[str, Any]]:
    """Parse and check ``job``; return it and the arguments a party process needs."""
    registry = ComponentRegistry(components)
    if isinstance(job, Mapping):
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        spec = load_job(job, registry.names(), base)
    else:
        base = Path(base_dir) if base_dir is not None else Path(job).parent
        spec = load_job(job, registry.names(), base)
    args = {"job": dict(spec.raw), "base_dir": str(base.resolve()), "source": spec.source,
            "components": overrides_for_processes(components)}
    return spec, args


async def party_entry(ctx: Context, job: dict[str, Any], base_dir: str, source: str,
                      out_dir: str, components: dict[str, str] | None = None,
                      resume: bool = False, progress: str = "none",
                      options: dict[str, Any] | None = None, vault_key: str | None = None,
                      vault_dir: str | None = None) -> dict[str, Any]:
    """One party's process: parse the job again and run this party's side.

    ``progress``: ``none``, ``tqdm`` (bars on this process's stderr) or a
    file path for the parent's :class:`ProgressMonitor`. Artefacts are sealed
    under ``vault_key`` or ``<vault_dir>/<party>.vault`` (made when missing).
    """
    registry = ComponentRegistry(components)
    spec = load_job(job, registry.names(), base_dir, name=source)
    sink: ProgressSink = ProgressSink()
    if progress == "tqdm":
        sink = TqdmProgress(ctx.party)
    elif progress != "none":
        sink = FileProgress(progress)
    return await run_party_job(ctx, spec, out_dir, registry=registry, resume=resume,
                               progress=sink, options=options,
                               vault=party_vault(ctx.party, vault_key, vault_dir,
                                                 getattr(ctx.config, "suite", "default")))


def party_vault(party: str, key: str | Path | None, directory: str | Path | None,
                suite: str = "default") -> Vault | None:
    """The party's vault from its key file, or from ``<directory>/<party>.vault``.

    ``suite`` is the cluster's link suite: ``gm`` seals with SM4-GCM.
    """
    if key is None and directory is None:
        return None
    path = Path(key) if key is not None else Path(str(directory)) / f"{party}.vault"
    return Vault.open_or_create(path).with_suite(suite)


def run_job_local(job: JobSource, out_dir: str | Path, *,
                  components: Mapping[str, ComponentRef] | None = None, resume: bool = False,
                  quiet: bool = True, base_dir: str | Path | None = None,
                  timeout: float = 1800.0, env: dict[str, str] | None = None,
                  wan: WanProfile | None = None,
                  options: Mapping[str, Any] | None = None,
                  vault_dir: str | Path | None = None) -> dict[str, Any]:
    """Run every party of ``job`` as a local process; return {party: summary}.

    Each party seals its artefacts under ``<vault_dir>/<party>.vault``
    (default :func:`~meshmpc.data.vault.default_vault_dir`).

    Raises :class:`meshmpc.net.launch.LaunchError` carrying each failed party's
    error (naming the party and the step) when the job stops.
    """
    spec, args = prepare(job, components, base_dir)
    parties = list(spec.parties)
    args.update(out_dir=str(Path(out_dir).resolve()), resume=resume,
                options=dict(options or {}),
                vault_dir=str(Path(vault_dir or default_vault_dir()).resolve()))
    if quiet:
        return run_local(parties, ENTRY, {**args, "progress": "none"}, wan=wan,
                         timeout=timeout, env=env)
    with tempfile.TemporaryDirectory(prefix="meshmpc-progress-") as tmp:
        files = {p: Path(tmp) / f"{p}.progress.json" for p in parties}
        per_party = {p: {**args, "progress": str(files[p])} for p in parties}
        with ProgressMonitor(files):
            return run_local(parties, "meshmpc.jobs.local:party_entry_by_party",
                             {"jobs": per_party}, wan=wan, timeout=timeout, env=env)


async def party_entry_by_party(ctx: Context, jobs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Launcher entry when parties need different arguments (their progress files)."""
    return await party_entry(ctx, **jobs[ctx.party])


def run_job_node(job: JobSource, party: str, config: str | Path, out_dir: str | Path, *,
                 key: str | Path | None = None, resume: bool = False, quiet: bool = False,
                 components: Mapping[str, ComponentRef] | None = None,
                 base_dir: str | Path | None = None) -> dict[str, Any]:
    """Run ``party``'s side of ``job`` on this node over the cluster in ``config``.

    Artefacts are sealed under the vault key beside the party's identity key.
    """
    spec, args = prepare(job, components, base_dir)
    identity = Path(key) if key else _identity_key(Path(config), party)
    args.update(out_dir=str(Path(out_dir).resolve()), resume=resume,
                progress="none" if quiet else "tqdm",
                vault_key=str(vault_key_beside(identity).resolve()))
    result: dict[str, Any] = run_loop(run_party(Path(config), party,
                                                Path(key) if key else None, ENTRY, args,
                                                parties=list(spec.parties)))
    return result


def _identity_key(config: Path, party: str) -> Path:
    """The identity key file ``run_party`` uses (the config's ``key_file`` or beside it)."""
    entry = load_config(config).party(party)
    return Path(entry.key_file) if entry.key_file else config.parent / f"{party}.key"


async def run_job_in_memory(job: JobSource, out_dir: str | Path, *,
                            components: Mapping[str, ComponentRef] | None = None,
                            resume: bool = False, base_dir: str | Path | None = None,
                            meshes: Mapping[str, Mesh] | None = None,
                            vault_dir: str | Path | None = None
                            ) -> dict[str, dict[str, Any] | BaseException]:
    """Every party in this process over an in-memory mesh; {party: summary or error}.

    A party that fails is shown to the others as disconnected, as a process
    exit would be. ``meshes`` lets a test supply its own (recording) meshes.
    """
    registry = ComponentRegistry(components)
    base = base_dir if base_dir is not None else (
        Path.cwd() if isinstance(job, Mapping) else Path(job).parent)
    spec = load_job(job, registry.names(), base)
    group: Mapping[str, Mesh] = meshes or MemoryMesh.group(list(spec.parties))

    async def one(party: str) -> dict[str, Any]:
        try:
            return await run_party_job(Context(group[party]), spec, out_dir,
                                       registry=registry, resume=resume,
                                       vault=party_vault(party, None, vault_dir))
        except BaseException as exc:
            mesh = group[party]
            if isinstance(mesh, MemoryMesh):
                mesh.fail_peers(party, f"party {party} failed: {type(exc).__name__}")
            raise

    results = await asyncio.gather(*(one(p) for p in spec.parties), return_exceptions=True)
    return dict(zip(spec.parties, results, strict=True))
