"""The OpenAPI 3.1 document of the API (served at /api/v1/openapi.json)."""

from __future__ import annotations

from typing import Any

from hsm_common import constants, models, names

from . import errors, paging, schemas

_B64 = {"type": "string", "contentEncoding": "base64", "pattern": "^[A-Za-z0-9+/]*={0,2}$"}
_KEY = {"type": "string", "pattern": names.KEY_PATTERN, "maxLength": constants.MAX_KEY_BYTES}


def _envelope(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["success", "data", "error"],
        "properties": {
            "success": {"type": "boolean"},
            "data": data,
            "error": {"$ref": "#/components/schemas/Error"},
        },
    }


def _response(description: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    schema = _envelope(data or {"type": ["object", "null"]})
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    failure = {"$ref": "#/components/schemas/Failure"}
    return {
        str(status): {
            "description": _DESCRIPTIONS[status],
            "content": {"application/json": {"schema": failure}},
        }
        for status in statuses
    }


_DESCRIPTIONS = {
    207: "written to some devices only; data.devices tells which and why (e.g. a full device)",
    400: "invalid input; error.details.field names it",
    401: "missing or invalid bearer token",
    403: "not permitted (SubjectAccessReview), decided before anything in the request is validated",
    404: "not found",
    409: "already exists",
    412: "If-Match version is not the current one",
    413: "body or secret data too large",
    415: "body is not JSON",
    422: "PIN rejected",
    501: "a value is to be generated and no device of the HSMDevice has a random number generator",
    503: "device or Kubernetes API unavailable",
    507: "no device had room (object budget or token memory); the message says what is used and free",
}

_PATH_PARAM = {
    "name": "path",
    "in": "path",
    "required": True,
    "description": "HSM path '<namespace>/<name>'",
    "schema": {"type": "string", "pattern": names.PATH_PATTERN, "maxLength": constants.MAX_PATH_BYTES},
}
_DEVICE_PARAM = {
    "name": "device",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "maxLength": 253},
}
_IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}
_AUTH = ["401", "403"]


def _op(
    summary: str,
    ok: dict[str, Any],
    *errs: int,
    params: list[Any] | None = None,
    body: str | None = None,
    refusable: bool = True,
) -> dict[str, Any]:
    """An operation; refusable=False: every authenticated caller may call it (no 403), see
    ``permissions.signed_in``."""
    checks = (401, 403, 503) if refusable else (401, 503)
    op: dict[str, Any] = {"summary": summary, "responses": {**ok, **_errors(*checks, *errs)}}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    return op


def document() -> dict[str, Any]:
    """The OpenAPI document; a test checks that it lists every route of the app."""
    secret_params = [_PATH_PARAM, _DEVICE_PARAM]
    write = {"$ref": "#/components/schemas/WriteResult"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "hsm-secrets-operator REST API", "version": "v1"},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(),
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/health": {
                "get": {
                    "summary": "liveness (no authentication)",
                    "security": [],
                    "responses": {"200": _response("alive")},
                }
            },
            "/api/v1/info": {"get": _op("API information", {"200": _response("info")})},
            "/api/v1/openapi.json": {
                "get": _op("this document", {"200": {"description": "OpenAPI document"}})
            },
            "/api/v1/hsm/info": {
                "get": _op(
                    "per-device information and capacity",
                    {"200": _response("devices", {"$ref": "#/components/schemas/DeviceInfo"})},
                    400,
                    404,
                    params=[_DEVICE_PARAM],
                )
            },
            "/api/v1/hsm/status": {
                "get": _op(
                    "per-device health", {"200": _response("status")}, 400, 404, params=[_DEVICE_PARAM]
                )
            },
            "/api/v1/hsm/pools": {
                "get": _op(
                    "every HSMDevice's HSMPool: phase, device counts and conditions",
                    {"200": _response("pools", {"$ref": "#/components/schemas/Pools"})},
                )
            },
            "/api/v1/hsm/namespaces": {
                "get": _op(
                    "the namespaces holding secrets on the HSMs that the caller may list secrets in (list on"
                    " hsmsecrets there, reviewed per namespace, at most maxReviewed of them); every"
                    " authenticated caller may ask, and one allowed nothing gets an empty list",
                    {"200": _response("namespaces", {"$ref": "#/components/schemas/Namespaces"})},
                    refusable=False,
                )
            },
            "/api/v1/hsm/secrets": {
                "get": _op(
                    "list secrets of a namespace, sorted and paginated",
                    {"200": _response("page")},
                    400,
                    404,
                    params=[
                        {
                            "name": "namespace",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string", "pattern": models_segment(), "maxLength": 63},
                        },
                        {
                            "name": "prefix",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "pattern": schemas.PREFIX_PATTERN},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": paging.MAX_LIMIT},
                        },
                        {"name": "continue", "in": "query", "required": False, "schema": {"type": "string"}},
                        _DEVICE_PARAM,
                    ],
                )
            },
            "/api/v1/hsm/secrets/{path}": {
                "get": _op(
                    "read a secret (values base64)",
                    {"200": _response("secret", {"$ref": "#/components/schemas/Secret"})},
                    400,
                    404,
                    params=secret_params,
                ),
                "post": _op(
                    "create a secret on every device",
                    {"201": _response("created", write), "207": _response("partial", write)},
                    400,
                    404,
                    409,
                    413,
                    415,
                    501,
                    507,
                    params=secret_params,
                    body="SecretBody",
                ),
                "put": _op(
                    "replace a secret (If-Match: version → compare-and-set)",
                    {"200": _response("replaced", write), "207": _response("partial", write)},
                    400,
                    404,
                    412,
                    413,
                    415,
                    501,
                    507,
                    params=[*secret_params, _IF_MATCH],
                    body="SecretBody",
                ),
                "patch": _op(
                    "merge keys (null removes one)",
                    {"200": _response("patched", write), "207": _response("partial", write)},
                    400,
                    404,
                    412,
                    413,
                    415,
                    501,
                    507,
                    params=[*secret_params, _IF_MATCH],
                    body="PatchBody",
                ),
                "delete": _op(
                    "delete a secret (tombstone) or one key",
                    {"200": _response("deleted", write), "207": _response("partial", write)},
                    400,
                    404,
                    412,
                    params=[
                        *secret_params,
                        _IF_MATCH,
                        {"name": "key", "in": "query", "required": False, "schema": _KEY},
                    ],
                ),
            },
            "/api/v1/hsm/secrets/{path}/metadata": {
                "get": _op(
                    "metadata of a secret", {"200": _response("metadata")}, 400, 404, params=secret_params
                )
            },
            "/api/v1/hsm/secrets/{path}/checksum": {
                "get": _op(
                    "checksum of a secret", {"200": _response("checksum")}, 400, 404, params=secret_params
                )
            },
            "/api/v1/hsm/secrets/{path}/versions": {
                "get": _op(
                    "state of a secret on every device",
                    {"200": _response("versions")},
                    400,
                    404,
                    params=secret_params,
                )
            },
            "/api/v1/hsm/change-pin": {
                "post": _op(
                    "change the PIN of every device of an HSMDevice",
                    {"200": _response("changed")},
                    400,
                    404,
                    413,
                    415,
                    422,
                    body="ChangePinBody",
                )
            },
            "/api/v1/hsm/mirror/sync": {
                "post": _op(
                    "repair divergence between devices",
                    {"200": _response("report")},
                    400,
                    404,
                    413,
                    415,
                    body="MirrorSyncBody",
                )
            },
            "/api/v1/hsm/import-legacy": {
                "post": _op(
                    "plan (with apply: run) the import of the Go hsm-secrets-operator's secrets on the"
                    " devices' tokens (see docs/migrating.md); reports names, keys and sizes, never values",
                    {"200": _response("plan or outcome per device and legacy path")},
                    207,
                    400,
                    404,
                    413,
                    415,
                    body="ImportLegacyBody",
                )
            },
        },
    }


def models_segment() -> str:
    """Pattern of one path segment (a namespace)."""
    return f"^{names.SEGMENT_PATTERN}$"


def _schemas() -> dict[str, Any]:
    metadata = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "description": {"type": "string", "maxLength": 1024},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 64},
            "format": {"type": "string", "maxLength": 64},
            "dataType": {"type": "string", "maxLength": 64},
            "source": {"type": "string", "maxLength": 256},
        },
    }
    device = {"type": ["string", "null"], "maxLength": 253}
    generate = {
        "type": "object",
        "description": "key → [FORMAT:]N, a value made by a device's random number generator: password:N "
        "(or N) is N characters of A-Z, a-z, 0-9; hex:N and base64:N encode N random bytes",
        "propertyNames": _KEY,
        "additionalProperties": {
            "type": "string",
            "pattern": r"^((password|hex|base64):)?[0-9]{1,4}$",
        },
        "maxProperties": schemas.MAX_GENERATED_KEYS,
    }
    return {
        "Error": {
            "type": ["object", "null"],
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "enum": [code.value for code in errors.Code]},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        },
        "Failure": _envelope({}),
        "Metadata": metadata,
        "SecretBody": {
            "type": "object",
            "description": "the secret's keys: given in data, generated, or both (at least one in all)",
            "anyOf": [{"required": ["data"]}, {"required": ["generate"]}],
            "additionalProperties": False,
            "properties": {
                "data": {"type": "object", "propertyNames": _KEY, "additionalProperties": _B64},
                "generate": generate,
                "metadata": {"$ref": "#/components/schemas/Metadata"},
            },
        },
        "PatchBody": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "data": {
                    "type": "object",
                    "propertyNames": _KEY,
                    "additionalProperties": {"anyOf": [_B64, {"type": "null"}]},
                },
                "generate": generate,
                "metadata": {"$ref": "#/components/schemas/Metadata"},
            },
        },
        "ChangePinBody": {
            "type": "object",
            "required": ["oldPin", "newPin"],
            "additionalProperties": False,
            "properties": {
                "device": device,
                "oldPin": {
                    "type": "string",
                    "minLength": 4,
                    "maxLength": 255,
                    "pattern": schemas.PIN_PATTERN,
                },
                "newPin": {
                    "type": "string",
                    "minLength": 4,
                    "maxLength": 255,
                    "pattern": schemas.PIN_PATTERN,
                },
            },
        },
        "ImportLegacyBody": {
            "type": "object",
            "additionalProperties": False,
            "description": "name a defaultNamespace, a mapping or both",
            "properties": {
                "device": device,
                "defaultNamespace": {
                    "type": "string",
                    "maxLength": 253,
                    "description": "namespace of every legacy path no mapping rule matches",
                },
                "mapping": {
                    "type": "object",
                    "description": "legacy path or prefix -> namespace (the longest match wins)",
                    "additionalProperties": {"type": "string"},
                    "maxProperties": schemas.MAX_IMPORT_RULES,
                },
                "knownPaths": {
                    "type": "object",
                    "description": "legacy paths known to exist -> the keys they should hold ([]: not known)",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    "maxProperties": schemas.MAX_KNOWN_PATHS,
                },
                "apply": {"type": "boolean", "default": False},
                "removeLegacy": {"type": "boolean", "default": False},
                "importIncomplete": {"type": "boolean", "default": False},
            },
        },
        "MirrorSyncBody": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"device": device, "prefix": {"type": "string", "pattern": schemas.PREFIX_PATTERN}},
        },
        "Secret": {
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "version": {"type": "integer"},
                "data": {"type": "object", "additionalProperties": _B64},
                "metadata": {"type": "object"},
                "device": {"type": "string"},
            },
        },
        "Capacity": _capacity(),
        "DeviceInfo": {
            "type": "object",
            "properties": {
                "hsmDevice": {"type": "string"},
                "namespace": {"type": "string"},
                "devices": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["device", "available"],
                        "properties": {
                            "device": {"type": "string"},
                            "serial": {"type": "string"},
                            "node": {"type": "string"},
                            "available": {"type": "boolean"},
                            "label": {"type": "string"},
                            "manufacturer": {"type": "string"},
                            "model": {"type": "string"},
                            "serialNumber": {"type": "string"},
                            "firmwareVersion": {"type": "string"},
                            "maxObjectSize": {"type": "integer"},
                            "secretCount": {"type": "integer"},
                            "capacity": {"$ref": "#/components/schemas/Capacity"},
                            "error": {"type": "object"},
                        },
                    },
                },
            },
        },
        "Namespaces": {
            "type": "object",
            "required": ["namespaces", "complete", "truncated", "maxReviewed"],
            "properties": {
                "namespaces": {"type": "array", "items": {"type": "string"}},
                "complete": {
                    "type": "boolean",
                    "description": "false when a device did not answer: a namespace only it holds may be"
                    " missing",
                },
                "truncated": {
                    "type": "boolean",
                    "description": "more namespaces hold secrets than maxReviewed: only the first, by name,"
                    " were reviewed (type another namespace to open it)",
                },
                "maxReviewed": {"type": "integer"},
            },
        },
        "Pools": {
            "type": "object",
            "properties": {
                "namespace": {"type": "string"},
                "pools": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "hsmDevice", "phase", "conditions", "error"],
                        "properties": {
                            "name": {"type": "string"},
                            "hsmDevice": {"type": "string"},
                            "phase": {
                                "type": ["string", "null"],
                                "enum": [*(phase.value for phase in models.PoolPhase), None],
                            },
                            "totalDevices": {"type": ["integer", "null"]},
                            "availableDevices": {"type": ["integer", "null"]},
                            "lastAggregationTime": {"type": ["string", "null"], "format": "date-time"},
                            "conditions": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "type": {"type": "string"},
                                        "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                                        "reason": {"type": "string"},
                                        "message": {"type": "string"},
                                        "lastTransitionTime": {
                                            "type": ["string", "null"],
                                            "format": "date-time",
                                        },
                                    },
                                },
                            },
                            "error": {
                                "type": "string",
                                "description": "why the pool's status could not be read (empty when read)",
                            },
                        },
                    },
                },
            },
        },
        "WriteResult": {
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "version": {"type": "integer"},
                "devices": {"type": "array"},
            },
        },
    }


def _capacity() -> dict[str, Any]:
    def count(description: str) -> dict[str, Any]:
        return {"type": "integer", "description": description}

    return {
        "type": "object",
        "description": "How full the token is; absent when the device's agent does not report it",
        "required": ["maxObjects", "usedObjects", "freeObjects", "ownObjects", "ownBytes"],
        "properties": {
            "maxObjects": count("the object budget; writes that would pass it fail with 507 DEVICE_FULL"),
            "usedObjects": count("objects on the token, other tools' keys and certificates included"),
            "freeObjects": count("objects new secrets may still use"),
            "ownObjects": count("of usedObjects, those holding this system's secrets"),
            "ownBytes": count("bytes of the secret values stored"),
            "totalMemory": count("token memory in bytes (only where the token reports it)"),
            "freeMemory": count("free token memory in bytes (only where the token reports it)"),
        },
    }
