"""The permission each route needs, declared on its view and read from the raw request.

The app authorizes a request straight after authenticating it, before its view runs, so nothing in the
path, query, headers or body is judged for a caller who may not make the request: a caller without
permission gets 403 whatever the request holds and learns nothing of what the route accepts. A view
without a declaration is refused (and ``undeclared`` lets the app refuse to start with one).

Values are taken raw, as the SubjectAccessReview will see them, and validated by the view afterwards:
a namespace that cannot exist (or none, which asks about every namespace) matches no RoleBinding, so only
a caller allowed in every namespace gets as far as being told what is wrong with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import flask
from werkzeug import exceptions

from . import auth, errors, schemas

log = logging.getLogger(__name__)

SECRETS = "hsmsecrets"
DEVICES = "hsmdevices"

Rule = Callable[[flask.Request, str], "auth.Access | None"]
"""The Access a request needs, from the raw request and the HSMDevices' namespace; None: no permission."""

View = TypeVar("View", bound=Callable[..., Any])

_RULES: dict[Callable[..., Any], Rule] = {}


def needs(rule: Rule) -> Callable[[View], View]:
    """Declare the permission a view needs (apply below the route decorator)."""

    def declare(view: View) -> View:
        _RULES[view] = rule
        return view

    return declare


def public(request: flask.Request, device_namespace: str) -> None:
    """The rule of a route anyone may call."""


def devices(verb: str) -> Rule:
    """verb on the HSMDevices, in their namespace."""

    def rule(request: flask.Request, device_namespace: str) -> auth.Access:
        return auth.Access(verb, DEVICES, device_namespace)

    return rule


def device_in_body(verb: str) -> Rule:
    """verb on the HSMDevice a JSON body names (every HSMDevice when it names none)."""

    def rule(request: flask.Request, device_namespace: str) -> auth.Access:
        return auth.Access(verb, DEVICES, device_namespace, _body_device(request))

    return rule


def secret_in_path(verb: str, verb_with_key: str = "") -> Rule:
    """verb on hsmsecrets in the namespace the path starts with (verb_with_key when ?key= names one)."""

    def rule(request: flask.Request, device_namespace: str) -> auth.Access:
        path = str((request.view_args or {}).get("path", ""))
        chosen = verb_with_key if verb_with_key and request.args.get("key") else verb
        return auth.Access(chosen, SECRETS, path.partition("/")[0])

    return rule


def secrets_in_query(verb: str) -> Rule:
    """verb on hsmsecrets in the namespace the query names (every namespace when it names none)."""

    def rule(request: flask.Request, device_namespace: str) -> auth.Access:
        return auth.Access(verb, SECRETS, request.args.get("namespace", ""))

    return rule


def access(app: flask.Flask, request: flask.Request, device_namespace: str) -> auth.Access | None:
    """What the request needs permission for; None when it matched no route (its routing error follows)."""
    if request.url_rule is None or request.endpoint is None:
        return None
    rule = _RULES.get(app.view_functions[request.endpoint])
    if rule is None:
        log.error("route_without_permission", extra={"endpoint": request.endpoint})
        raise errors.ApiError("internal error: the route declares no permission")
    return rule(request, device_namespace)


def undeclared(app: flask.Flask) -> list[str]:
    """The app's endpoints whose view declares no permission."""
    return sorted(endpoint for endpoint, view in app.view_functions.items() if view not in _RULES)


def _body_device(request: flask.Request) -> str:
    """The device a JSON body names, read without judging the body ("" when it names none we can use)."""
    try:
        document = schemas.parse_json(request.get_data(cache=True))
    except (errors.MalformedBody, RecursionError, exceptions.RequestEntityTooLarge):
        return ""
    device = document.get("device") if isinstance(document, dict) else None
    # A longer name cannot be a device (the body will be refused); it would only grow the review and its
    # cache entry, so it is reviewed as every device, which only a caller allowed on all of them passes.
    return device if isinstance(device, str) and len(device) <= schemas.MAX_DEVICE_NAME else ""
