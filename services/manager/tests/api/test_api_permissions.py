"""Every route declares its permission; one without a declaration cannot start or run; body names are raw."""

from __future__ import annotations

import json
import re

import flask
import pytest

from hsm_manager.api import app, auth, openapi, permissions, routes, schemas
from hsm_manager.gateway import endpoints
from hsm_manager.mirroring import service

from . import api_test_app


class _Anyone:
    """Every token is a user and every user may do anything."""

    def review_token(self, token: str) -> auth.User | None:
        return auth.User(token)

    def allowed(self, user: auth.User, access: auth.Access) -> bool:
        return True


class _Recording:
    """Every token is a user; every access is refused and recorded."""

    def __init__(self) -> None:
        self.asked: list[auth.Access] = []

    def review_token(self, token: str) -> auth.User | None:
        return auth.User(token)

    def allowed(self, user: auth.User, access: auth.Access) -> bool:
        self.asked.append(access)
        return False


class _NoPins:
    def update_pin(self, namespace: str, device: str, new_pin: str) -> None:
        raise AssertionError("not called")


@pytest.fixture
def deps() -> app.Deps:
    anyone = _Anyone()
    return app.Deps(
        auth.Guard(anyone, anyone),
        service.Mirror(endpoints.StaticDirectory([]), "ns"),
        _NoPins(),
        "ns",
        api_test_app.StaticPools([]),
    )


def _access(verb: str, resource: str, namespace: str, name: str = "") -> auth.Access:
    return auth.Access(verb, resource, namespace, name)


#: (method, URL, JSON body, the SubjectAccessReview's attributes): what every operation asks, as before.
ACCESSES = [
    ("GET", "/api/v1/info", None, _access("get", "hsmdevices", "ns")),
    ("GET", "/api/v1/openapi.json", None, _access("get", "hsmdevices", "ns")),
    ("GET", "/api/v1/hsm/info?device=pair", None, _access("get", "hsmdevices", "ns")),
    ("GET", "/api/v1/hsm/status", None, _access("get", "hsmdevices", "ns")),
    ("GET", "/api/v1/hsm/pools", None, _access("get", "hsmdevices", "ns")),
    ("GET", "/api/v1/hsm/secrets?namespace=team-a&limit=5", None, _access("list", "hsmsecrets", "team-a")),
    ("GET", "/api/v1/hsm/secrets/team-a/db/pw", None, _access("get", "hsmsecrets", "team-a")),
    ("GET", "/api/v1/hsm/secrets/team-a/db/metadata", None, _access("get", "hsmsecrets", "team-a")),
    ("GET", "/api/v1/hsm/secrets/team-a/db/checksum", None, _access("get", "hsmsecrets", "team-a")),
    ("GET", "/api/v1/hsm/secrets/team-a/db/versions", None, _access("get", "hsmsecrets", "team-a")),
    (
        "POST",
        "/api/v1/hsm/secrets/team-a/db",
        {"data": {"k": "dg=="}},
        _access("create", "hsmsecrets", "team-a"),
    ),
    (
        "PUT",
        "/api/v1/hsm/secrets/team-a/db",
        {"data": {"k": "dg=="}},
        _access("update", "hsmsecrets", "team-a"),
    ),
    (
        "PATCH",
        "/api/v1/hsm/secrets/team-a/db",
        {"data": {"k": None}},
        _access("patch", "hsmsecrets", "team-a"),
    ),
    ("DELETE", "/api/v1/hsm/secrets/team-a/db", None, _access("delete", "hsmsecrets", "team-a")),
    ("DELETE", "/api/v1/hsm/secrets/team-a/db?key=k", None, _access("update", "hsmsecrets", "team-a")),
    ("DELETE", "/api/v1/hsm/secrets/team-a/db?key=", None, _access("delete", "hsmsecrets", "team-a")),
    (
        "POST",
        "/api/v1/hsm/change-pin",
        {"device": "pair", "oldPin": "123456", "newPin": "654321"},
        _access("update", "hsmdevices", "ns", "pair"),
    ),
    (
        "POST",
        "/api/v1/hsm/change-pin",
        {"oldPin": "123456", "newPin": "654321"},
        _access("update", "hsmdevices", "ns"),
    ),
    ("POST", "/api/v1/hsm/mirror/sync", {"device": "pair"}, _access("update", "hsmdevices", "ns", "pair")),
    ("POST", "/api/v1/hsm/mirror/sync", None, _access("update", "hsmdevices", "ns")),
    (
        "POST",
        "/api/v1/hsm/import-legacy",
        {"device": "pair", "defaultNamespace": "team-a"},
        _access("update", "hsmdevices", "ns", "pair"),
    ),
]


@pytest.mark.parametrize(("method", "url", "body", "expected"), ACCESSES)
def test_each_operation_asks_the_review_it_always_asked(
    method: str, url: str, body: object, expected: auth.Access
) -> None:
    reviewer = _Recording()
    deps = app.Deps(
        auth.Guard(reviewer, reviewer),
        service.Mirror(endpoints.StaticDirectory([]), "ns"),
        _NoPins(),
        "ns",
        api_test_app.StaticPools([]),
    )
    response = (
        app.create_app(deps)
        .test_client()
        .open(url, method=method, json=body, headers={"Authorization": "Bearer alice"})
    )
    assert response.status_code == 403
    assert reviewer.asked == [expected]


def test_the_review_table_covers_every_documented_operation_that_can_be_refused() -> None:
    documented = {
        (path, method.upper())
        for path, item in openapi.document()["paths"].items()
        for method, operation in item.items()
        if operation.get("security") != [] and "403" in operation["responses"]
    }
    covered = {
        (
            re.sub(
                r"^/api/v1/hsm/secrets/team-a/db(?:/pw)?(/metadata|/checksum|/versions)?$",
                r"/api/v1/hsm/secrets/{path}\1",
                url.partition("?")[0],
            ),
            method,
        )
        for method, url, _, _ in ACCESSES
    }
    assert covered == documented


def test_the_only_operation_documented_without_403_answers_a_caller_allowed_nothing_with_nothing() -> None:
    reviewer = _Recording()
    deps = app.Deps(
        auth.Guard(reviewer, reviewer),
        service.Mirror(endpoints.StaticDirectory([]), "ns"),
        _NoPins(),
        "ns",
        api_test_app.StaticPools([]),
    )
    client = app.create_app(deps).test_client()
    unrefused = [
        (path, method)
        for path, item in openapi.document()["paths"].items()
        for method, operation in item.items()
        if operation.get("security") != [] and "403" not in operation["responses"]
    ]
    assert unrefused == [("/api/v1/hsm/namespaces", "get")]
    response = client.get("/api/v1/hsm/namespaces", headers={"Authorization": "Bearer alice"})
    assert response.status_code == 200
    assert response.json is not None
    assert response.json["data"]["namespaces"] == []


def test_every_route_of_the_app_declares_its_permission(deps: app.Deps) -> None:
    assert permissions.undeclared(app.create_app(deps)) == []


def test_the_app_refuses_to_start_with_a_route_that_declares_no_permission(
    deps: app.Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    blueprint = flask.Blueprint("api", __name__, url_prefix="/api/v1")
    blueprint.add_url_rule("/forgotten", "forgotten", lambda: "ran")
    monkeypatch.setattr(routes, "blueprint", blueprint)
    with pytest.raises(TypeError, match=r"api\.forgotten"):
        app.create_app(deps)


def test_a_route_added_later_without_a_declaration_is_refused_before_it_runs(deps: app.Deps) -> None:
    ran: list[bool] = []

    def forgotten() -> str:
        ran.append(True)
        return "ran"

    flask_app = app.create_app(deps)
    flask_app.add_url_rule("/api/v1/forgotten", view_func=forgotten)
    response = flask_app.test_client().get("/api/v1/forgotten", headers={"Authorization": "Bearer admin"})
    assert response.status_code == 500
    assert permissions.undeclared(flask_app) == ["forgotten"]
    assert ran == []


@pytest.mark.parametrize(
    "body",
    [
        {"device": "pair", "oldPin": "123456", "newPin": "654321"},
        {"device": "", "oldPin": "123456", "newPin": "654321"},
        {"device": None, "oldPin": "123456", "newPin": "654321"},
        {"oldPin": "123456", "newPin": "654321"},
        {"device": "d" * schemas.MAX_DEVICE_NAME, "oldPin": "123456", "newPin": "654321"},
    ],
)
def test_the_device_reviewed_is_the_device_a_valid_body_names(
    deps: app.Deps, body: dict[str, object]
) -> None:
    raw = json.dumps(body).encode()
    parsed = schemas.parse_body(schemas.ChangePinBody, raw)
    with app.create_app(deps).test_request_context(method="POST", data=raw, content_type="application/json"):
        access = permissions.device_in_body("update")(flask.request, "ns")
    assert access is not None
    assert access.name == (parsed.device or "")


@pytest.mark.parametrize(
    "raw",
    [
        b"{nope",
        b"[]",
        b'{"device": 7}',
        b'{"device": "' + b"d" * (schemas.MAX_DEVICE_NAME + 1) + b'"}',
        b"[" * 100_000,
    ],
    ids=["malformed", "not-an-object", "not-a-string", "too-long", "too-deep"],
)
def test_a_body_that_names_no_usable_device_is_reviewed_for_every_device(deps: app.Deps, raw: bytes) -> None:
    with app.create_app(deps).test_request_context(method="POST", data=raw, content_type="application/json"):
        access = permissions.device_in_body("update")(flask.request, "ns")
    assert access == auth.Access("update", permissions.DEVICES, "ns")


class _DevicesOnly(_Recording):
    """Every access to the HSMDevices is allowed, every other refused; all are recorded."""

    def allowed(self, user: auth.User, access: auth.Access) -> bool:
        self.asked.append(access)
        return access.resource == permissions.DEVICES


@pytest.mark.parametrize(
    ("body", "namespaces"),
    [
        ({"defaultNamespace": "team-a", "mapping": {"x": "team-b", "y": "team-a"}}, ["team-a", "team-b"]),
        ({"mapping": {"x": "team-b"}}, ["team-b"]),
        ({"defaultNamespace": 5}, [""]),
        ({}, [""]),
        ({"mapping": {f"p{i}": f"n{i}" for i in range(schemas.MAX_IMPORT_NAMESPACES + 1)}}, [""]),
    ],
)
def test_the_legacy_import_asks_for_the_devices_then_create_in_every_target_namespace(
    body: dict[str, object], namespaces: list[str]
) -> None:
    reviewer = _DevicesOnly()
    deps = app.Deps(
        auth.Guard(reviewer, reviewer),
        service.Mirror(endpoints.StaticDirectory([]), "ns"),
        _NoPins(),
        "ns",
        api_test_app.StaticPools([]),
    )
    response = (
        app.create_app(deps)
        .test_client()
        .post("/api/v1/hsm/import-legacy", json=body, headers={"Authorization": "Bearer alice"})
    )
    assert response.status_code == 403
    # The first namespace refused ends the review.
    assert reviewer.asked == [
        _access("update", "hsmdevices", "ns"),
        _access("create", "hsmsecrets", namespaces[0]),
    ]
