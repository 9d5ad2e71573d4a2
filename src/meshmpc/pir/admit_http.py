"""A PIR or score server asking the data owner's node before it answers a batch of lookups.

``pir serve --node URL --node-token-file F --dataset NAME`` (and a partner's
joint-score server) runs apart from its node, yet every batch must pass the
node's grant caps, purpose and consent checks first. :class:`HttpLookupGate`
is the :data:`~meshmpc.pir.server.LookupGate` that does it: one ``POST
/api/v1/lookups/admit`` per batch (the contract is in
:mod:`meshmpc.platform.api_lookups`), authenticated with an analyst's API
token, with a timeout. It fails closed: a node that does not answer, refuses
the token or refuses the batch means the batch is refused
(:class:`~meshmpc.pir.errors.LookupRefused`, answered ``refused`` to the client
before any OPRF is evaluated).

Engine level on purpose: it speaks HTTP with the standard library and imports
nothing of :mod:`meshmpc.platform`, which re-exports it as
``RemoteLookupGate``.
"""

from __future__ import annotations

import asyncio
import json
import stat
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from meshmpc.pir.errors import LookupRefused, PirError

ADMIT_PATH = "/api/v1/lookups/admit"
WHOAMI_PATH = "/api/v1/me"
ADMIT_ROLE = "analyst"  # the role holding the node's ``lookups.admit`` permission


class NodeGateError(PirError, ValueError):
    """The node gate cannot be set up: bad URL, unreadable token file, token refused."""


def read_token_file(path: Path) -> str:
    """The API token in ``path`` (one line); refused when unreadable, empty or readable by
    others (a token is a credential: ``chmod 600``)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise NodeGateError(f"node token file {path}: {exc.strerror or exc}; write the "
                            "analyst's API token there (POST /api/v1/auth/login with "
                            '"kind": "token")') from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise NodeGateError(f"node token file {path} is readable by other users; run "
                            f"`chmod 600 {path}`")
    if not token or any(c.isspace() for c in token):
        raise NodeGateError(f"node token file {path} holds no token (one line, no spaces)")
    return token


def admit_body(client: str, dataset: str, count: int, header: dict[str, Any],
               component: str) -> dict[str, Any]:
    """The admit request of one batch: who, which dataset, how many keys, and the purpose
    and consent (count, root) the batch's header carried (None where absent)."""
    raw = header.get("consent")
    consent: dict[str, Any] = raw if isinstance(raw, dict) else {}
    count_given, root = consent.get("count"), consent.get("root")
    purpose = header.get("purpose")
    return {"requester": client, "dataset": dataset, "count": count,
            "purpose": purpose if isinstance(purpose, str) else None,
            "component": component,
            "consent": {"count": count_given if isinstance(count_given, int) else None,
                        "root": root if isinstance(root, str) else None}}


def call_node(base: str, token: str, path: str, body: dict[str, Any] | None = None,
              timeout_s: float = 10.0) -> tuple[int, bytes]:
    """One call of a node's API (GET, or POST of ``body``) with ``token``: (status, body).

    Raises OSError when the node does not answer. The standard library's HTTP
    client, so engine code and apps need no extra dependency; ``base`` is
    checked to be an http(s) address by the callers."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked by the callers
        base + path, data=data, method="GET" if body is None else "POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                 "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as reply:  # noqa: S310
            return int(reply.status), reply.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def node_base(node_url: str) -> str:
    """``node_url`` without its trailing slash; NodeGateError unless http(s)://host."""
    parts = urlsplit(node_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise NodeGateError(f"--node {node_url!r}: give the node's API address, e.g. "
                            "http://127.0.0.1:8600")
    return node_url.rstrip("/")


def error_message(status: int, raw: bytes) -> str:
    """The node's error message from its error body (``{"error": {"message"}}``)."""
    try:
        body = json.loads(raw)
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(body, dict) and body.get("detail"):
            return str(body["detail"])
    except ValueError:
        pass
    return raw.decode("utf-8", "replace")[:300] or f"HTTP {status}"


class HttpLookupGate:
    """Admit each batch through the node at ``node_url`` (see the module docstring)."""

    def __init__(self, node_url: str, token: str, dataset: str, component: str = "pir.query",
                 timeout_s: float = 10.0) -> None:
        self.base = node_base(node_url)
        self.url = self.base + ADMIT_PATH
        self.token, self.dataset, self.component = token, dataset, component
        self.timeout_s = timeout_s

    def _request(self, path: str, body: dict[str, Any] | None, error: type[Exception],
                 what_to_do: str) -> tuple[int, bytes]:
        """(HTTP status, body); a node that does not answer raises ``error``."""
        try:
            return call_node(self.base, self.token, path, body, self.timeout_s)
        except OSError as exc:
            reason = getattr(exc, "reason", None) or exc
            raise error(f"the node at {self.base} did not answer ({reason}); "
                        f"{what_to_do}") from None

    def admit_now(self, client: str, count: int, header: dict[str, Any]) -> int:
        """Ask the node (blocking); the number admitted, or :class:`LookupRefused`."""
        body = admit_body(client, self.dataset, count, header, self.component)
        status, raw = self._request(ADMIT_PATH, body, LookupRefused,
                                    "no lookups are admitted without it")
        if status != 200:
            raise LookupRefused(f"{error_message(status, raw)} (node {self.base}, HTTP {status})")
        try:
            return int(json.loads(raw)["admitted"])
        except (ValueError, KeyError, TypeError):
            raise LookupRefused(f"the node at {self.url} sent an unreadable answer") from None

    async def __call__(self, client: str, count: int, header: dict[str, Any]) -> None:
        await asyncio.to_thread(self.admit_now, client, count, header)

    def check(self) -> list[str]:
        """At start-up: the node answers and the token is an analyst's; its roles, or
        :class:`NodeGateError` saying what to fix."""
        status, raw = self._request(WHOAMI_PATH, None, NodeGateError,
                                    "start it (meshmpc node serve) or fix --node")
        if status != 200:
            raise NodeGateError(f"the node at {self.base} refused the token "
                                f"({error_message(status, raw)}); put a valid API token of an "
                                "analyst account in the token file")
        roles = [str(r) for r in json.loads(raw).get("roles", [])]
        if ADMIT_ROLE not in roles:
            raise NodeGateError(f"the token's account has roles {roles}; admitting lookups "
                                f"needs the {ADMIT_ROLE!r} role")
        return roles

    async def aclose(self) -> None:
        """Nothing to release (one connection per request); kept for callers that close."""
