"""Serving the built web console (``console/`` built by Vite) from the node, same origin as the API.

The bundle lives in ``platform/console_dist`` (built by ``make console``; not committed), or in
the directory named by ``MESHMPC_CONSOLE_DIR``. Every path that is not a file of the bundle and
not under ``/api/`` answers with ``index.html``, so the console's client-side routes
(``/jobs/abc``) survive a reload. Unknown ``/api/...`` paths keep the API's JSON error body.
When the bundle is missing, ``/`` says how to build it instead of showing a blank page.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

BUNDLE = Path(__file__).with_name("console_dist")
HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
           "Referrer-Policy": "same-origin"}
NOT_BUILT = """<!doctype html><html lang="zh"><meta charset="utf-8"><title>meshmpc</title>
<h1>控制台尚未构建 / console not built</h1>
<p>在仓库根目录运行 <code>make console</code>（需要 Node.js 与 npm），然后刷新本页。</p>
<p>Run <code>make console</code> in the repository (needs Node.js and npm), then reload.
The API is served at <a href="/api/docs">/api/docs</a>.</p></html>"""


def bundle_dir() -> Path:
    """Where the built console is read from (``MESHMPC_CONSOLE_DIR`` overrides)."""
    return Path(os.environ.get("MESHMPC_CONSOLE_DIR") or BUNDLE)


class ConsoleFiles(StaticFiles):
    """Static files of the bundle with a fallback to ``index.html`` for client routes."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path == "api" or path.startswith("api/"):
            return JSONResponse({"error": {"code": "not_found",
                                           "message": f"no API endpoint /{path}"}}, 404)
        try:
            response = await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404:
                raise
            response = await super().get_response("index.html", scope)
        if response.status_code == 404:
            response = await super().get_response("index.html", scope)
        response.headers.update(HEADERS)
        if path in ("", ".", "index.html") or not Path(path).suffix:
            response.headers["Cache-Control"] = "no-cache"
        return response


class MissingConsole:
    """What ``/`` serves when the bundle was not built: how to build it, never a blank page."""

    async def __call__(self, scope: Scope, receive: object, send: object) -> None:
        path = str(scope.get("path", "/"))
        if path.startswith("/api/"):
            response: Response = JSONResponse({"error": {"code": "not_found",
                                                         "message": f"no API endpoint {path}"}},
                                              404)
        else:
            response = HTMLResponse(NOT_BUILT, status_code=503, headers=HEADERS)
        await response(scope, receive, send)  # type: ignore[arg-type]


def console_app() -> ConsoleFiles | MissingConsole:
    """The ASGI app mounted at ``/`` by :func:`meshmpc.platform.api.create_app`."""
    directory = bundle_dir()
    if (directory / "index.html").is_file():
        return ConsoleFiles(directory=directory, html=True)
    return MissingConsole()
