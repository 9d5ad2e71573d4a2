"""The node's REST API (FastAPI): login, users, peers; resources in :mod:`.api_resources`.

Conventions every endpoint follows:

- under ``/api/v1``; the OpenAPI document at ``/api/v1/openapi.json``, docs at ``/api/docs``;
- authentication by the ``meshmpc_session`` cookie (browser; state-changing
  requests must echo the session's CSRF token in ``X-CSRF-Token``) or by
  ``Authorization: Bearer <token>`` (API tokens; no CSRF needed); nothing but
  ``/health`` and ``/auth/login`` is anonymous, and every write checks the role;
- errors are ``{"error": {"code": ..., "message": ...}}`` with a fitting status;
- lists are paginated: ``?limit=&offset=`` in, ``{"items", "total", "limit", "offset"}`` out;
- every write is appended to the audit log with the acting user (never a secret).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from meshmpc import __version__
from meshmpc.errors import MeshMPCError
from meshmpc.platform import keyring
from meshmpc.platform.auth import AuthError, Principal, check_roles
from meshmpc.platform.models import Peer, User
from meshmpc.platform.node import Node
from meshmpc.platform.readcache import encode

COOKIE = "meshmpc_session"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
MAX_PAGE = 500


class ApiError(MeshMPCError):
    """An error with an HTTP status and a stable code, rendered as the error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_body(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def page(items: list[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def rows_page(node: Node, table: Any, order: Any, limit: int, offset: int) -> dict[str, Any]:
    """One page of a table's rows, every column (small tables: grants, model versions)."""
    with node.db.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(table)).scalar() or 0
        rows = conn.execute(select(table).order_by(order).limit(limit)
                            .offset(offset)).mappings().all()
    return page([dict(r) for r in rows], total, limit, offset)


def paging(limit: int = 50, offset: int = 0) -> tuple[int, int]:
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise ApiError(400, "bad_paging", f"limit must be 1..{MAX_PAGE} and offset >= 0")
    return limit, offset


def node_of(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


async def _principal(node: Node, secret: str) -> Principal:
    """From the principal cache in the event loop; a miss is looked up in a worker thread."""
    cached = node.accounts.cached(secret)
    if cached is not None:
        return cached
    return await run_in_threadpool(node.accounts.authenticate, secret)


async def current_user(request: Request) -> Principal:
    """The authenticated principal; browser writes must carry the CSRF token."""
    node = node_of(request)
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return await _principal(node, header[7:].strip())
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        raise AuthError("log in first (POST /api/v1/auth/login)")
    principal = await _principal(node, cookie)
    if request.method not in SAFE_METHODS and request.headers.get("x-csrf-token") != principal.csrf:
        raise AuthError("missing or wrong X-CSRF-Token header for a browser session", status=403)
    return principal


def requires(permission: str) -> Callable[..., Any]:
    async def check(principal: Principal = Depends(current_user)) -> Principal:  # noqa: B008
        principal.require(permission)
        return principal
    return check


def json_bytes(data: bytes) -> Response:
    return Response(data, media_type="application/json")


async def cached_page(request: Request, key: tuple[Any, ...], tables: tuple[str, ...],
                      render: Callable[[], Any]) -> Response:
    """A list page from the node's page cache; rendered in a worker thread on a miss.

    ``render`` must read only ``tables`` (their write versions key the page).
    """
    pages = node_of(request).pages
    data, versions = pages.lookup(key, tables)
    if data is None:
        data = await run_in_threadpool(lambda: pages.store(key, versions, render()))
    return json_bytes(data)


class LoginBody(BaseModel):
    name: str
    password: str
    otp: str | None = None
    kind: str = Field("browser", pattern="^(browser|token)$")
    days: int = Field(90, ge=1, le=365)
    label: str | None = None


class UserBody(BaseModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    password: str
    roles: list[str]


class RolesBody(BaseModel):
    roles: list[str]


class PeerBody(BaseModel):
    address: str
    public_key: str
    api_url: str | None = None


def _peer_json(peer: Peer) -> dict[str, Any]:
    return {"party": peer.party, "address": peer.address, "api_url": peer.api_url,
            "public_key": peer.public_key, "status": peer.status, "reason": peer.reason,
            "last_seen": peer.last_seen, "latency_ms": peer.latency_ms,
            "throughput_mbps": peer.throughput_mbps, "software_version": peer.software_version,
            "protocol_version": peer.protocol_version}


def core_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.get("/health")
    async def health(request: Request) -> Response:
        node = node_of(request)
        return json_bytes(encode({"party": node.party, "version": __version__, "status": "ok",
                                  "audit_entries": node.audit.seq}))

    @router.post("/auth/login")
    def login(body: LoginBody, request: Request, response: Response) -> dict[str, Any]:
        node = node_of(request)
        try:
            secret, who = node.accounts.login(body.name, body.password, body.otp, body.kind,
                                              body.days, body.label)
        except AuthError:
            node.audit.append("auth.login_failed", body.name, {"kind": body.kind})
            raise
        node.audit.append("auth.login", who.name, {"kind": body.kind})
        result: dict[str, Any] = {"user": who.name, "roles": sorted(who.roles)}
        if body.kind == "browser":
            response.set_cookie(COOKIE, secret, httponly=True, samesite="strict",
                                secure=request.url.scheme == "https", path="/")
            result["csrf"] = who.csrf
        else:
            result["token"] = secret
        return result

    @router.post("/auth/logout")
    def logout(request: Request, response: Response,
               who: Principal = Depends(current_user)) -> dict[str, Any]:  # noqa: B008
        secret = request.cookies.get(COOKIE) or request.headers.get("authorization", "")[7:]
        node_of(request).accounts.logout(secret.strip())
        response.delete_cookie(COOKIE, path="/")
        node_of(request).audit.append("auth.logout", who.name, {})
        return {"ok": True}

    @router.get("/me")
    def me(who: Principal = Depends(current_user)) -> dict[str, Any]:  # noqa: B008
        return {"user": who.name, "roles": sorted(who.roles), "via": who.via, "csrf": who.csrf}

    @router.get("/users")
    def users(request: Request, who: Principal = Depends(requires("users.write")),  # noqa: B008
              limit: int = 50, offset: int = 0) -> dict[str, Any]:
        limit, offset = paging(limit, offset)
        with node_of(request).db.session() as s:
            total = s.scalar(select(func.count()).select_from(User)) or 0
            rows = s.scalars(select(User).order_by(User.name).limit(limit).offset(offset)).all()
            items = [{"name": u.name, "roles": u.roles, "totp": bool(u.totp_secret),
                      "locked": u.locked_until > 0, "disabled": u.disabled} for u in rows]
        return page(items, total, limit, offset)

    @router.post("/users", status_code=201)
    def create_user(body: UserBody, request: Request,
                    who: Principal = Depends(requires("users.write"))  # noqa: B008
                    ) -> dict[str, Any]:
        node = node_of(request)
        uri = node.accounts.create_user(body.name, body.password, check_roles(body.roles))
        node.audit.append("user.create", who.name, {"user": body.name, "roles": body.roles})
        return {"user": body.name, "roles": sorted(body.roles), "totp_uri": uri}

    @router.put("/users/{name}/roles")
    def set_roles(name: str, body: RolesBody, request: Request,
                  who: Principal = Depends(requires("users.write"))  # noqa: B008
                  ) -> dict[str, Any]:
        node = node_of(request)
        node.accounts.set_roles(name, body.roles)
        node.audit.append("user.roles", who.name, {"user": name, "roles": body.roles})
        return {"user": name, "roles": sorted(body.roles)}

    @router.get("/peers")
    async def peers(request: Request, who: Principal = Depends(current_user),  # noqa: B008
                    limit: int = 50, offset: int = 0) -> Response:
        limit, offset = paging(limit, offset)
        node = node_of(request)

        def render() -> dict[str, Any]:
            with node.db.session() as s:
                total = s.scalar(select(func.count()).select_from(Peer)) or 0
                rows = s.scalars(select(Peer).order_by(Peer.party).limit(limit)
                                 .offset(offset)).all()
                return page([_peer_json(p) for p in rows], total, limit, offset)
        return await cached_page(request, ("peers", limit, offset), ("peers",), render)

    @router.put("/peers/{party}")
    def put_peer(party: str, body: PeerBody, request: Request,
                 who: Principal = Depends(requires("peers.write"))  # noqa: B008
                 ) -> dict[str, Any]:
        node = node_of(request)
        with node.db.session() as s:
            if keyring.is_revoked(s, party, body.public_key):
                raise ApiError(400, "revoked_key", f"{party}'s key {body.public_key} is "
                               "revoked; pin its new key")
            peer = s.get(Peer, party) or Peer(party=party, address=body.address,
                                              public_key=body.public_key)
            peer.address, peer.public_key, peer.api_url = (body.address, body.public_key,
                                                           body.api_url)
            s.add(peer)
            result = _peer_json(peer)
        node.audit.append("peer.put", who.name, {"peer": party, "address": body.address})
        return result

    return router


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return error_body(exc.status, exc.code, exc.message)

    @app.exception_handler(AuthError)
    async def _auth(_: Request, exc: AuthError) -> JSONResponse:
        return error_body(exc.status, "unauthorized" if exc.status == 401 else "forbidden",
                          str(exc))

    @app.exception_handler(MeshMPCError)
    async def _domain(_: Request, exc: MeshMPCError) -> JSONResponse:
        status = 403 if isinstance(exc, PermissionError) else 400
        return error_body(status, type(exc).__name__, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_body(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_body(exc.status_code, "http_error", str(exc.detail))


def create_app(node: Node, heartbeats: bool = True) -> FastAPI:
    """The ASGI application serving one node's API (heartbeats to peers while it runs)."""
    from meshmpc.platform.api_keys import keys_router
    from meshmpc.platform.api_peer import heartbeat_loop, peer_router
    from meshmpc.platform.api_resources import resource_router
    from meshmpc.platform.console import console_app
    from meshmpc.platform.orchestrate import Orchestrator
    from meshmpc.platform.peering import ReplayGuard
    from meshmpc.platform.plugins import include_plugin_routers

    orchestrator = Orchestrator(node)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        beat = asyncio.ensure_future(heartbeat_loop(orchestrator)) if heartbeats else None
        yield
        if beat is not None:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    app = FastAPI(title=f"meshmpc node ({node.party})", version=__version__,
                  openapi_url="/api/v1/openapi.json", docs_url="/api/docs", redoc_url=None,
                  lifespan=lifespan)
    app.state.node = node
    app.state.orchestrator = orchestrator
    app.state.replays = ReplayGuard()
    install_error_handlers(app)
    app.include_router(core_router())
    app.include_router(resource_router())
    app.include_router(peer_router())
    app.include_router(keys_router())
    include_plugin_routers(app)
    app.mount("/", console_app(), name="console")
    return app
