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

Rule = Callable[[flask.Request, str], "auth.Access | list[auth.Access] | None"]
"""The Access (or every Access, in the order checked) a request needs, from the raw request and the
HSMDevices' namespace; None: no permission."""

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


def signed_in(request: flask.Request, device_namespace: str) -> None:
    """The rule of a route every authenticated caller may call: it takes no input and answers only with
    what the caller's own permissions allow, which its view reviews item by item (a caller allowed
    nothing gets an empty answer, not 403)."""


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


def legacy_import(request: flask.Request, device_namespace: str) -> list[auth.Access]:
    """update on the HSMDevice the body names (every one when none), then create on hsmsecrets in every
    namespace the body sends legacy paths to (its ``defaultNamespace`` and its ``mapping``'s values).

    The import is device-wide like change-pin and mirror/sync: it reads every object the Go operator left
    on a token, whatever namespace it will land in, and with removeLegacy destroys them; so it needs what
    they need. What it writes are secrets of those namespaces, so it also needs what creating one there
    through this API needs, also for a dry run, whose plan tells what the targets already hold. Namespaces
    are read raw: a body that names none readable (or too many to review one by one) is reviewed as every
    namespace, which only a caller allowed in all of them passes, before being told what is wrong.
    """
    document = _body_document(request)
    device = document.get("device") if document is not None else None
    accesses = [
        auth.Access(
            "update",
            DEVICES,
            device_namespace,
            device if isinstance(device, str) and len(device) <= schemas.MAX_DEVICE_NAME else "",
        )
    ]
    return accesses + [
        auth.Access("create", SECRETS, namespace) for namespace in _target_namespaces(document)
    ]


def _target_namespaces(document: dict[str, Any] | None) -> list[str]:
    if document is None:
        return [""]
    found: set[str] = set()
    raw = [document.get("defaultNamespace")]
    mapping = document.get("mapping")
    if isinstance(mapping, dict):
        raw += list(mapping.values())
    elif mapping is not None:
        return [""]
    for namespace in raw:
        if isinstance(namespace, str) and 0 < len(namespace) <= 253:
            found.add(namespace)
        elif namespace is not None:
            return [""]
    if not found or len(found) > schemas.MAX_IMPORT_NAMESPACES:
        return [""]
    return sorted(found)


def access(app: flask.Flask, request: flask.Request, device_namespace: str) -> list[auth.Access]:
    """What the request needs permission for, in the order to check; [] when it matched no route (its
    routing error follows) or the route is public."""
    if request.url_rule is None or request.endpoint is None:
        return []
    rule = _RULES.get(app.view_functions[request.endpoint])
    if rule is None:
        log.error("route_without_permission", extra={"endpoint": request.endpoint})
        raise errors.ApiError("internal error: the route declares no permission")
    needed = rule(request, device_namespace)
    if needed is None:
        return []
    return needed if isinstance(needed, list) else [needed]


def undeclared(app: flask.Flask) -> list[str]:
    """The app's endpoints whose view declares no permission."""
    return sorted(endpoint for endpoint, view in app.view_functions.items() if view not in _RULES)


def _body_document(request: flask.Request) -> dict[str, Any] | None:
    """The JSON object of the body, read without judging it (None when it is none)."""
    try:
        document = schemas.parse_json(request.get_data(cache=True))
    except (errors.MalformedBody, RecursionError, exceptions.RequestEntityTooLarge):
        return None
    return document if isinstance(document, dict) else None


def _body_device(request: flask.Request) -> str:
    """The device a JSON body names, read without judging the body ("" when it names none we can use)."""
    document = _body_document(request)
    device = document.get("device") if document is not None else None
    # A longer name cannot be a device (the body will be refused); it would only grow the review and its
    # cache entry, so it is reviewed as every device, which only a caller allowed on all of them passes.
    return device if isinstance(device, str) and len(device) <= schemas.MAX_DEVICE_NAME else ""
