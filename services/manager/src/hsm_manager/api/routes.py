"""The routes: each turns a request into one plain-function call and an enveloped response.

Each view declares the permission it needs (``permissions.needs``); the app checks it before the view runs,
so a view only validates and acts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import flask

from hsm_manager.mirroring import devices, groups, randomness, reads, writes
from hsm_manager.mirroring import errors as mirror_errors

from . import (
    audit,
    auth,
    envelope,
    errors,
    legacy,
    metrics,
    namespaces,
    openapi,
    paging,
    permissions,
    pools,
    schemas,
    views,
)

if TYPE_CHECKING:
    from . import app as _app

blueprint = flask.Blueprint("api", __name__, url_prefix="/api/v1")
#: A secret's last segment that would be taken for a sub-resource route; writes to it are refused.
RESERVED = frozenset({"metadata", "checksum", "versions"})


def _deps() -> _app.Deps:
    deps: _app.Deps = flask.current_app.extensions["hsm_api"]
    return deps


def _user() -> auth.User:
    user: auth.User = flask.g.user
    return user


def _group(device: str | None = None) -> groups.Group:
    return _deps().mirror.resolve(device if device is not None else flask.request.args.get("device"))


def _if_match() -> int | None:
    raw = flask.request.headers.get("If-Match")
    if raw is None:
        return None
    text = raw.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or len(text) > 18:
        raise errors.InvalidArgument(
            "If-Match must be a secret version (a non-negative integer)", {"field": "If-Match"}
        )
    return int(text)


def _json_body() -> bytes:
    if flask.request.mimetype != "application/json":
        raise errors.UnsupportedMediaType("request body must be application/json", {"field": "Content-Type"})
    return flask.request.get_data(cache=False)


def _ok(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> flask.Response:
    response = flask.jsonify(envelope.ok(data))
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _write_reply(written: writes.Written, success_status: int) -> flask.Response:
    data = writes.wire(written)
    if written.partial:
        body = envelope.failure(
            errors.Code.PARTIAL_FAILURE,
            "the write reached only some devices; the mirror repair brings the others along",
            data=data,
        )
        response = flask.jsonify(body)
        response.status_code = errors.STATUS[errors.Code.PARTIAL_FAILURE]
    else:
        response = flask.jsonify(envelope.ok(data))
        response.status_code = success_status
    response.headers["ETag"] = f'"{written.version}"'
    return response


def _audited(
    action: str,
    target: str,
    keys: Callable[[], list[str]],
    run: Callable[[], writes.Written],
    success_status: int = 200,
) -> flask.Response:
    """Run a write and leave its audit line, whatever the outcome."""
    try:
        written = run()
    except mirror_errors.MirrorError as error:
        failed = errors.from_mirror(error)
        audit.record(_user(), action, target, failed.status, _safe_keys(keys))
        raise failed from None
    except errors.ApiError as error:
        audit.record(_user(), action, target, error.status, _safe_keys(keys))
        raise
    response = _write_reply(written, success_status)
    audit.record(_user(), action, target, response.status_code, _safe_keys(keys), written.results)
    return response


def _safe_keys(keys: Callable[[], list[str]]) -> list[str]:
    try:
        return keys()
    except (errors.ApiError, mirror_errors.MirrorError):
        return []


# ------------------------------------------------------------------ general


@blueprint.get("/health")
@permissions.needs(permissions.public)
def health() -> flask.Response:
    return _ok({"status": "ok"})


@blueprint.get("/info")
@permissions.needs(permissions.devices("get"))
def info() -> flask.Response:
    deps = _deps()
    return _ok(
        {
            "name": "hsm-secrets-operator",
            "apiVersion": "v1",
            "deviceNamespace": deps.device_namespace,
            "devices": deps.mirror.devices(),
            "user": _user().username,
        }
    )


@blueprint.get("/openapi.json")
@permissions.needs(permissions.devices("get"))
def openapi_document() -> flask.Response:
    return flask.jsonify(openapi.document())


@blueprint.get("/hsm/info")
@permissions.needs(permissions.devices("get"))
def hsm_info() -> flask.Response:
    group = _group()
    return _ok(views.device_info(group.device, group.namespace, devices.info(group)))


@blueprint.get("/hsm/status")
@permissions.needs(permissions.devices("get"))
def hsm_status() -> flask.Response:
    group = _group()
    return _ok(views.device_status(group.device, devices.health(group)))


@blueprint.get("/hsm/pools")
@permissions.needs(permissions.devices("get"))
def hsm_pools() -> flask.Response:
    deps = _deps()
    return _ok(views.pool_list(deps.device_namespace, pools.read(deps.pools, deps.device_namespace)))


# ------------------------------------------------------------------ secrets


@blueprint.get("/hsm/namespaces")
# Open to every caller: the view keeps only the namespaces the caller may list secrets in.
@permissions.needs(permissions.signed_in)
def list_namespaces() -> flask.Response:
    held = namespaces.holding(_deps().mirror)
    return _ok(views.visible_namespaces(namespaces.visible(_deps().guard, _user(), held)))


@blueprint.get("/hsm/secrets")
@permissions.needs(permissions.secrets_in_query("list"))
def list_secrets() -> flask.Response:
    args = flask.request.args
    raw_namespace = args.get("namespace")
    if not raw_namespace:
        raise errors.InvalidArgument("query parameter 'namespace' is required", {"field": "namespace"})
    namespace = schemas.parse_namespace(raw_namespace)
    limit = paging.parse_limit(args.get("limit"))
    token = args.get("continue")
    after = paging.decode_token(token) if token else ""
    prefix = schemas.parse_prefix(args.get("prefix", ""))
    listed = reads.list_live(_group(), f"{namespace}/{prefix}", after, limit)
    return _ok(views.secret_list(listed, namespace))


@blueprint.get("/hsm/secrets/<path:path>")
@permissions.needs(permissions.secret_in_path("get"))
def read_secret(path: str) -> flask.Response:
    parsed = schemas.parse_path(path)
    found, device = reads.read(_group(), parsed.path)
    return _ok(views.secret(found, device), headers={"ETag": f'"{found.version}"'})


@blueprint.get("/hsm/secrets/<path:path>/metadata")
@permissions.needs(permissions.secret_in_path("get"))
def read_metadata(path: str) -> flask.Response:
    parsed = schemas.parse_path(path)
    return _ok(views.secret_metadata(*reads.metadata(_group(), parsed.path)))


@blueprint.get("/hsm/secrets/<path:path>/checksum")
@permissions.needs(permissions.secret_in_path("get"))
def read_checksum(path: str) -> flask.Response:
    parsed = schemas.parse_path(path)
    return _ok(views.checksum(parsed.path, reads.checksum(_group(), parsed.path)))


@blueprint.get("/hsm/secrets/<path:path>/versions")
@permissions.needs(permissions.secret_in_path("get"))
def read_versions(path: str) -> flask.Response:
    parsed = schemas.parse_path(path)
    group = _group()
    found = reads.versions(group, parsed.path)
    return _ok(views.versions(parsed.path, found, [member.name for member in group.members]))


def _writable(path: str) -> schemas.SecretPath:
    parsed = schemas.parse_path(path)
    last = parsed.path.rsplit("/", 1)[-1]
    if last in RESERVED:
        raise errors.InvalidArgument(
            f"a secret's last path segment cannot be {last!r}: it names a sub-resource in this API",
            {"field": "path"},
        )
    return parsed


@blueprint.post("/hsm/secrets/<path:path>")
@permissions.needs(permissions.secret_in_path("create"))
def create_secret(path: str) -> flask.Response:
    parsed = _writable(path)
    raw = _json_body()
    body = schemas.parse_body(schemas.SecretBody, raw)
    data, specs = schemas.decode_secret(body)
    user, group = _user(), _group()
    return _audited(
        "create",
        parsed.path,
        lambda: [*data, *specs],
        lambda: writes.create(
            group,
            parsed.path,
            {**data, **randomness.values(group, specs)},
            views.metadata_of(body.metadata),
            user.username,
        ),
        success_status=201,
    )


@blueprint.put("/hsm/secrets/<path:path>")
@permissions.needs(permissions.secret_in_path("update"))
def replace_secret(path: str) -> flask.Response:
    parsed = _writable(path)
    expected = _if_match()
    body = schemas.parse_body(schemas.SecretBody, _json_body())
    data, specs = schemas.decode_secret(body)
    user, group = _user(), _group()
    return _audited(
        "replace",
        parsed.path,
        lambda: [*data, *specs],
        lambda: writes.replace(
            group,
            parsed.path,
            {**data, **randomness.values(group, specs)},
            views.metadata_of(body.metadata),
            user.username,
            expected,
        ),
    )


@blueprint.patch("/hsm/secrets/<path:path>")
@permissions.needs(permissions.secret_in_path("patch"))
def patch_secret(path: str) -> flask.Response:
    parsed = _writable(path)
    expected = _if_match()
    body = schemas.parse_body(schemas.PatchBody, _json_body())
    changes = schemas.decode_patch(body.data)
    specs = schemas.parse_generate(body.generate, changes)
    user, group = _user(), _group()
    return _audited(
        "patch",
        parsed.path,
        lambda: [*changes, *specs],
        lambda: writes.patch(
            group,
            parsed.path,
            {**changes, **randomness.values(group, specs)},
            views.metadata_of(body.metadata),
            user.username,
            expected,
            schemas.validate_merged,
        ),
    )


@blueprint.delete("/hsm/secrets/<path:path>")
# Deleting one key updates the secret.
@permissions.needs(permissions.secret_in_path("delete", verb_with_key="update"))
def delete_secret(path: str) -> flask.Response:
    key = flask.request.args.get("key")
    parsed = schemas.parse_path(path)
    expected = _if_match()
    user, group = _user(), _group()
    if key is not None:
        valid_key = schemas.validate_key(key)
        return _audited(
            "delete-key",
            parsed.path,
            lambda: [valid_key],
            lambda: writes.delete_key(group, parsed.path, valid_key, user.username, expected),
        )
    return _audited(
        "delete",
        parsed.path,
        list,
        lambda: writes.delete(group, parsed.path, user.username, expected),
    )


# ------------------------------------------------------------------ devices


@blueprint.post("/hsm/change-pin")
@permissions.needs(permissions.device_in_body("update"))
def change_pin() -> flask.Response:
    body = schemas.parse_body(schemas.ChangePinBody, _json_body())
    group = _group(body.device or None)
    try:
        changed = devices.change_pin(group, _deps().pins, body.old_pin, body.new_pin)
    except mirror_errors.MirrorError as error:
        failed = errors.from_mirror(error)
        audit.record(_user(), "change-pin", f"hsmdevice/{group.device}", failed.status)
        raise failed from None
    audit.record(_user(), "change-pin", f"hsmdevice/{group.device}", 200)
    return _ok({"hsmDevice": group.device, "devices": changed, "pinSecretUpdated": True})


@blueprint.post("/hsm/mirror/sync")
@permissions.needs(permissions.device_in_body("update"))
def mirror_sync() -> flask.Response:
    raw = flask.request.get_data(cache=False)
    body = schemas.parse_body(schemas.MirrorSyncBody, raw) if raw.strip() else schemas.MirrorSyncBody()
    group = _group(body.device or None)
    report = _deps().mirror.repair(group.device, schemas.parse_prefix(body.prefix), metrics.observe_repair)
    audit.record(_user(), "mirror-sync", f"hsmdevice/{group.device}", 200)
    return _ok(report.to_wire())


@blueprint.post("/hsm/import-legacy")
@permissions.needs(permissions.legacy_import)
def import_legacy() -> flask.Response:
    body = schemas.parse_body(schemas.ImportLegacyBody, _json_body())
    targets = schemas.import_namespaces(body)
    found = legacy.chosen(_deps().mirror, body.device or None)
    report, complete = legacy.run(found, legacy.request_of(body))
    action = "import-legacy" if body.apply else "import-legacy-plan"
    devices_named = ",".join(f"hsmdevice/{group.device}" for group in found)
    target = f"{devices_named} into namespaces {','.join(targets)}"
    if complete:
        audit.record(_user(), action, target, 200)
        return _ok(report)
    status = errors.STATUS[errors.Code.PARTIAL_FAILURE]
    audit.record(_user(), action, target, status)
    response = flask.jsonify(
        envelope.failure(
            errors.Code.PARTIAL_FAILURE,
            "some devices did not answer; run the import again to finish it",
            data=report,
        )
    )
    response.status_code = status
    return response
