"""The decision service's scorecard from the node: the deployed version of a model, kept current.

``meshmpc credit serve --node URL --node-token-file F --model NAME`` scores
with the version of model ``NAME`` the node marks deployed (``GET
/api/v1/models/deployed?name=``, :mod:`meshmpc.platform.api_models`), not with
a file named at start-up: an approver's ``POST /api/v1/models/{id}/deploy``
(or a rollback, the deploy of an older version) reaches the running service
within one poll interval (``every_s``, 5 s by default), without a restart.

The artefact itself comes through the node's results API (``GET
/api/v1/jobs/{job}/results/{step}/{file}``), which opens a sealed artefact
with the node's vault, so the service never holds the node's key; a version
registered without a job is read from its ``path`` on this machine
(:func:`meshmpc.jobs.artefacts.read_artefact` with the service's vault).

A new version is loaded (fetched and parsed) before it replaces the old one, in
one assignment (:meth:`DecisionService.use_rater`): a decision reads the rater
once and finishes with it. A version that fails to load is logged and the
previous one stays in service. Every answer names the model version it used.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from meshmpc.data.vault import Vault
from meshmpc.errors import MeshMPCError
from meshmpc.jobs.artefacts import read_artefact
from meshmpc.ml.scorecard import PartyScorecard
from meshmpc.pir.admit_http import call_node, error_message, node_base
from meshmpc_credit.decision.joint_score import BankCard, JointRater
from meshmpc_credit.decision.rating import BankScorecard
from meshmpc_credit.decision.service import DecisionService

POLL_S = 5.0
log = logging.getLogger("meshmpc_credit.deployed")


class ModelSourceError(MeshMPCError, RuntimeError):
    """The node has no deployed version of the model, or it cannot be fetched or read."""


class DeployedModel:
    """Model ``name`` as deployed on the node at ``node_url`` (see the module docstring)."""

    def __init__(self, node_url: str, token: str, name: str, vault: Vault | None = None,
                 timeout_s: float = 10.0) -> None:
        self.base, self.token, self.name = node_base(node_url), token, name
        self.vault, self.timeout_s = vault, timeout_s
        self.current: dict[str, Any] | None = None
        """Name, version and id of the version in service."""

    def _get(self, path: str) -> bytes:
        try:
            status, raw = call_node(self.base, self.token, path, None, self.timeout_s)
        except OSError as exc:
            raise ModelSourceError(f"model {self.name}: the node at {self.base} did not "
                                   f"answer ({getattr(exc, 'reason', None) or exc})") from None
        if status != 200:
            raise ModelSourceError(f"model {self.name}: {error_message(status, raw)} (node "
                                   f"{self.base}, HTTP {status})")
        return raw

    def deployed(self) -> dict[str, Any]:
        """The node's record of the deployed version (id, version, job_id, step, path...)."""
        try:
            info = json.loads(self._get(f"/api/v1/models/deployed?name={quote(self.name)}"))
        except ValueError:
            info = None
        if not isinstance(info, dict) or "version" not in info:
            raise ModelSourceError(f"model {self.name}: the node sent no version record")
        return info

    def artefact(self, info: dict[str, Any]) -> bytes:
        """The version's artefact: through the results API, else its local ``path``."""
        path = Path(str(info.get("path") or ""))
        if info.get("job_id") and info.get("step") and path.name:
            return self._get(f"/api/v1/jobs/{quote(str(info['job_id']))}/results/"
                             f"{quote(str(info['step']))}/{quote(path.name)}")
        try:
            return read_artefact(path, self.vault)
        except OSError as exc:
            raise ModelSourceError(f"model {self.name} v{info['version']}: no job to fetch it "
                                   f"from and {path} is unreadable here ({exc})") from None

    def load(self, partners: Sequence[str], info: dict[str, Any] | None = None
             ) -> tuple[JointRater | BankScorecard, dict[str, Any]]:
        """The rater of the deployed version (or of ``info``) and its name/version/id."""
        info = info or self.deployed()
        try:
            data = json.loads(self.artefact(info))
            if isinstance(data, dict) and data.get("format") == "meshmpc.scorecard":
                rater: JointRater | BankScorecard = JointRater(
                    BankCard(PartyScorecard.from_dict(data)), partners)
            else:
                rater = BankScorecard(data)
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelSourceError(f"model {self.name} v{info['version']}: not a scorecard "
                                   f"({type(exc).__name__}: {exc})") from None
        return rater, {"name": self.name, "version": int(info["version"]),
                       "id": info.get("id")}

    async def start(self, service: DecisionService, partners: Sequence[str]) -> None:
        """Put the deployed version in service now (fails when there is none)."""
        rater, model = await asyncio.to_thread(self.load, partners)
        service.use_rater(rater, model)
        self.current = model

    async def refresh(self, service: DecisionService, partners: Sequence[str]) -> bool:
        """Swap in the deployed version if it changed; True when it did."""
        info = await asyncio.to_thread(self.deployed)
        if self.current is not None and info.get("id") == self.current.get("id") \
                and int(info["version"]) == self.current["version"]:
            return False
        rater, model = await asyncio.to_thread(self.load, partners, info)
        service.use_rater(rater, model)
        log.warning("model %s: now v%s (was v%s)", self.name, model["version"],
                    self.current["version"] if self.current else None)
        self.current = model
        return True

    async def watch(self, service: DecisionService, partners: Sequence[str],
                    every_s: float = POLL_S) -> None:
        """Poll the node forever (a background task); a failed poll keeps the version."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.refresh(service, partners)
            except (MeshMPCError, ValueError, OSError) as exc:
                log.warning("%s; keeping v%s in service", exc,
                            self.current["version"] if self.current else None)
