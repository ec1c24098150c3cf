"""The web console: its files (package data under ``static/``) served at ``/`` and ``/console/``.

The console is a page of static files that calls the REST API from the browser with the user's bearer
token, so it needs no route of its own: this WSGI middleware answers GET and HEAD of its files in front of
the API app and hands every other request to the app unchanged. The files hold no secret and are served
to anyone; what the page shows comes from API calls, authenticated and authorized like any other.
"""

from __future__ import annotations

import importlib.resources
import pathlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # typeshed exists for type checkers only: nothing to depend on at run time.
    from _typeshed import wsgi  # pants: no-infer-dep

#: Where the console's assets live: not under /api/v1, so no asset can shadow an API route.
ASSET_PREFIX = "/console/"
#: What every response of the console carries. The page runs only our own files: no inline script or
#: style (so an injected <script> does not run), no framing (clickjacking), no Referer leaving the page,
#: no guessing of content types, and nothing kept in caches (a new image's files are used at once).
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


def files() -> dict[str, tuple[str, bytes]]:
    """URL path → (content type, body) of every console file, read once from the package."""
    root = importlib.resources.files("hsm_manager.api").joinpath("static")
    served: dict[str, tuple[str, bytes]] = {}
    pending = [(root, "")]
    while pending:
        folder, relative = pending.pop()
        for entry in folder.iterdir():
            name = f"{relative}{entry.name}"
            if entry.is_dir():
                pending.append((entry, f"{name}/"))
                continue
            suffix = pathlib.PurePosixPath(name).suffix
            if suffix in _TYPES:
                served[f"{ASSET_PREFIX}{name}"] = (_TYPES[suffix], entry.read_bytes())
    served["/"] = served.pop(f"{ASSET_PREFIX}index.html")
    return served


def middleware(app: wsgi.WSGIApplication) -> wsgi.WSGIApplication:
    """app behind the console: GET and HEAD of a console file are answered here, the rest by app."""
    served = files()

    def serve(environ: wsgi.WSGIEnvironment, start_response: wsgi.StartResponse) -> Iterable[bytes]:
        found = served.get(environ.get("PATH_INFO", ""))
        method = environ.get("REQUEST_METHOD", "")
        if found is None or method not in ("GET", "HEAD"):
            return app(environ, start_response)
        content_type, body = found
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), *HEADERS.items()]
        start_response("200 OK", headers)
        return [] if method == "HEAD" else [body]

    return serve
