"""The Flask app factory: authentication of every request but /api/v1/health, then authorization of every
route from its declared permission (before its view judges anything in the request), envelopes, limits,
metrics, response headers; the web console's files in front of it."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import flask
import prometheus_client
from werkzeug import exceptions

from hsm_common import constants
from hsm_manager.mirroring import devices, service
from hsm_manager.mirroring import errors as mirror_errors

from . import auth, console, envelope, errors, metrics, permissions, pools, routes

log = logging.getLogger(__name__)

#: Largest request body: 1 MiB of data grows by 4/3 in base64, plus room for keys, metadata and JSON.
MAX_BODY_BYTES = (constants.MAX_SECRET_BYTES * 4 + 2) // 3 + 256 * 1024
#: The one route that needs no token (a secret named "health" is under /hsm/secrets and is not exempt).
HEALTH_PATH = "/api/v1/health"
#: What every API response carries: answers hold secret values, so no cache may keep one; JSON is never
#: to be sniffed as anything else, nor framed, nor rendered as a page that runs anything.
API_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


@dataclasses.dataclass(frozen=True)
class Deps:
    """Everything the API talks to; production wiring is in ``bootstrap``, tests hand in their own."""

    guard: auth.Guard
    mirror: service.Mirror
    """The devices' agents (of the HSMDevices' namespace), through the mirroring service."""
    pins: devices.PinStore
    device_namespace: str
    """Namespace of the HSMDevices (authorization of device-wide routes happens there)."""
    pools: pools.PoolSource
    """The HSMPools (of the HSMDevices' namespace), read from the Kubernetes API."""


def create_app(deps: Deps) -> flask.Flask:
    """A Flask app serving the API with deps, and the web console's files (``console``)."""
    # No static route: every route of this app is a view of routes that declares its permission; the
    # console's files are served in front of the app, as they are no API route.
    app = flask.Flask("hsm_manager.api", static_folder=None)
    # Flask's way of adding WSGI middleware, which mypy takes for replacing a method with another type.
    app.wsgi_app = console.middleware(app.wsgi_app)  # type: ignore[method-assign,assignment]
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["hsm_api"] = deps
    app.register_blueprint(routes.blueprint)
    if undeclared := permissions.undeclared(app):
        raise TypeError(f"routes without a permission declaration (permissions.needs): {undeclared}")
    app.before_request(_authenticate)
    app.before_request(_authorize)
    app.after_request(_observe)
    app.after_request(_headers)
    app.register_error_handler(errors.ApiError, _api_error)
    app.register_error_handler(mirror_errors.MirrorError, _operation_error)
    app.register_error_handler(exceptions.HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    return app


def metrics_app() -> Any:
    """WSGI app serving the (multiprocess) metrics, for the metrics port."""
    return prometheus_client.make_wsgi_app(metrics.registry())


def _authenticate() -> None:
    flask.g.started = time.perf_counter()
    if flask.request.path == HEALTH_PATH and flask.request.method in ("GET", "HEAD"):
        return
    deps: Deps = flask.current_app.extensions["hsm_api"]
    flask.g.user = deps.guard.authenticate(flask.request.headers.get("Authorization"))


def _authorize() -> None:
    # Before the view, from the route's declaration and the raw request: no view validates any part of a
    # request (path, query, headers, body) its caller may not make.
    deps: Deps = flask.current_app.extensions["hsm_api"]
    for access in permissions.access(flask.current_app, flask.request, deps.device_namespace):
        deps.guard.authorize(flask.g.user, access)


def _observe(response: flask.Response) -> flask.Response:
    rule = flask.request.url_rule.rule if flask.request.url_rule else "unmatched"
    started = flask.g.get("started", time.perf_counter())
    metrics.observe_request(rule, flask.request.method, response.status_code, time.perf_counter() - started)
    return response


def _headers(response: flask.Response) -> flask.Response:
    response.headers.update(API_HEADERS)
    return response


def _api_error(error: errors.ApiError) -> tuple[dict[str, Any], int]:
    return envelope.from_error(error), error.status


def _operation_error(error: mirror_errors.MirrorError) -> tuple[dict[str, Any], int]:
    return _api_error(errors.from_mirror(error))


_HTTP_CODES = {
    404: errors.Code.ROUTE_NOT_FOUND,
    405: errors.Code.METHOD_NOT_ALLOWED,
    413: errors.Code.PAYLOAD_TOO_LARGE,
    415: errors.Code.UNSUPPORTED_MEDIA_TYPE,
}


def _http_error(error: exceptions.HTTPException) -> tuple[dict[str, Any], int]:
    status = error.code or 500
    code = _HTTP_CODES.get(status, errors.Code.MALFORMED_BODY if status == 400 else errors.Code.INTERNAL)
    message = "request body exceeds the size limit" if status == 413 else (error.description or error.name)
    details = {"limitBytes": MAX_BODY_BYTES} if status == 413 else {}
    return envelope.failure(code, message, details), status


def _unexpected(error: Exception) -> tuple[dict[str, Any], int]:
    log.exception("api_unexpected_error", extra={"error_type": type(error).__name__})
    return envelope.failure(errors.Code.INTERNAL, "internal error"), 500
