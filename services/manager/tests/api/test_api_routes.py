"""The API under real gunicorn with two real agents: authn, authz, CRUD, limits, errors, audit, metrics."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests

from hsm_common import constants

from .conftest import Api, b64

SECRETS = "/api/v1/hsm/secrets"

#: (method, route, body) of every route but /health, with a path the admin may write.
ROUTES = [
    ("GET", "/api/v1/info", None),
    ("GET", "/api/v1/openapi.json", None),
    ("GET", "/api/v1/hsm/info", None),
    ("GET", "/api/v1/hsm/status", None),
    ("GET", "/api/v1/hsm/pools", None),
    ("GET", f"{SECRETS}?namespace=team-a", None),
    ("GET", f"{SECRETS}/team-a/routes", None),
    ("GET", f"{SECRETS}/team-a/routes/metadata", None),
    ("GET", f"{SECRETS}/team-a/routes/checksum", None),
    ("GET", f"{SECRETS}/team-a/routes/versions", None),
    ("POST", f"{SECRETS}/team-a/routes-new", {"data": {"k": b64(b"v")}}),
    ("PUT", f"{SECRETS}/team-a/routes", {"data": {"k": b64(b"v2")}}),
    ("PATCH", f"{SECRETS}/team-a/routes", {"data": {"j": b64(b"v3")}}),
    ("DELETE", f"{SECRETS}/team-a/routes?key=j", None),
    ("DELETE", f"{SECRETS}/team-a/routes-new", None),
    ("POST", "/api/v1/hsm/mirror/sync", {}),
    ("POST", "/api/v1/hsm/change-pin", {"oldPin": "123456", "newPin": "123456"}),
]


@pytest.fixture(scope="module", autouse=True)
def _seed(api: Api) -> None:
    response = api.call("POST", f"{SECRETS}/team-a/routes", json={"data": {"k": b64(b"v")}})
    assert response.status_code == 201, response.text


def _error(response: requests.Response) -> dict[str, object]:
    body = response.json()
    assert body["success"] is False
    error: dict[str, object] = body["error"]
    return error


def test_health_needs_no_token(api: Api) -> None:
    response = api.call("GET", "/api/v1/health", token=None)
    assert response.status_code == 200
    assert response.json()["data"] == {"status": "ok"}


@pytest.mark.parametrize(
    "route", ["/api/v1/health/", "/api/v1/healthz", f"{SECRETS}/team-a/health", "/api/v1/auth/token"]
)
def test_routes_named_like_health_are_not_exempt(api: Api, route: str) -> None:
    response = api.call("GET", route, token=None)
    assert response.status_code == 401
    assert _error(response)["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(("method", "route", "body"), ROUTES)
def test_every_route_refuses_a_missing_token(api: Api, method: str, route: str, body: object) -> None:
    assert api.call(method, route, token=None, json=body).status_code == 401


@pytest.mark.parametrize(("method", "route", "body"), ROUTES)
def test_every_route_refuses_an_invalid_token(api: Api, method: str, route: str, body: object) -> None:
    assert api.call(method, route, token="forged", json=body).status_code == 401


@pytest.mark.parametrize(("method", "route", "body"), ROUTES)
def test_every_route_refuses_a_user_without_permission(
    api: Api, method: str, route: str, body: object
) -> None:
    response = api.call(method, route, token="nobody", json=body)
    assert response.status_code == 403
    assert _error(response)["code"] == "FORBIDDEN"


@pytest.mark.parametrize(("method", "route", "body"), ROUTES)
def test_every_route_serves_a_permitted_user(api: Api, method: str, route: str, body: object) -> None:
    response = api.call(method, route, json=body)
    assert 200 <= response.status_code < 300, response.text


def test_a_user_of_one_namespace_cannot_read_another(api: Api) -> None:
    api.call("POST", f"{SECRETS}/team-b/private", json={"data": {"k": b64(b"b")}})
    assert api.call("GET", f"{SECRETS}/team-b/private", token="team-a").status_code == 403
    assert api.call("GET", f"{SECRETS}?namespace=team-b", token="team-a").status_code == 403


def test_a_user_of_one_namespace_cannot_write_another(api: Api) -> None:
    body = {"data": {"k": b64(b"x")}}
    assert api.call("PUT", f"{SECRETS}/team-b/private", token="team-a", json=body).status_code == 403
    assert api.call("GET", f"{SECRETS}/team-b/private").json()["data"]["data"] == {"k": b64(b"b")}


def test_a_reader_cannot_write(api: Api) -> None:
    response = api.call(
        "POST", f"{SECRETS}/team-a/by-reader", token="reader", json={"data": {"k": b64(b"x")}}
    )
    assert response.status_code == 403


def test_binary_values_round_trip(api: Api) -> None:
    value = bytes(range(256)) * 4
    assert (
        api.call("POST", f"{SECRETS}/team-a/binary", json={"data": {"blob": b64(value)}}).status_code == 201
    )
    read = api.call("GET", f"{SECRETS}/team-a/binary", token="team-a").json()["data"]
    assert read["data"] == {"blob": b64(value)}


def test_create_of_an_existing_secret_conflicts(api: Api) -> None:
    response = api.call("POST", f"{SECRETS}/team-a/routes", json={"data": {"k": b64(b"again")}})
    assert response.status_code == 409
    assert _error(response)["code"] == "ALREADY_EXISTS"


def test_replace_with_a_stale_version_is_refused(api: Api) -> None:
    api.call("POST", f"{SECRETS}/team-a/cas", json={"data": {"k": b64(b"1")}})
    version = api.call("GET", f"{SECRETS}/team-a/cas").json()["data"]["version"]
    ok = api.call(
        "PUT", f"{SECRETS}/team-a/cas", json={"data": {"k": b64(b"2")}}, headers={"If-Match": str(version)}
    )
    assert ok.status_code == 200
    stale = api.call(
        "PUT", f"{SECRETS}/team-a/cas", json={"data": {"k": b64(b"3")}}, headers={"If-Match": str(version)}
    )
    assert stale.status_code == 412
    assert api.call("GET", f"{SECRETS}/team-a/cas").json()["data"]["data"] == {"k": b64(b"2")}


def test_patch_merges_keys_and_null_removes_one(api: Api) -> None:
    api.call("POST", f"{SECRETS}/team-a/patched", json={"data": {"a": b64(b"1"), "b": b64(b"2")}})
    response = api.call("PATCH", f"{SECRETS}/team-a/patched", json={"data": {"a": None, "c": b64(b"3")}})
    assert response.status_code == 200
    data = api.call("GET", f"{SECRETS}/team-a/patched").json()["data"]["data"]
    assert data == {"b": b64(b"2"), "c": b64(b"3")}


def test_delete_of_one_key_keeps_the_others(api: Api) -> None:
    api.call("POST", f"{SECRETS}/team-a/keys", json={"data": {"a": b64(b"1"), "b": b64(b"2")}})
    assert api.call("DELETE", f"{SECRETS}/team-a/keys?key=a").status_code == 200
    assert api.call("GET", f"{SECRETS}/team-a/keys").json()["data"]["data"] == {"b": b64(b"2")}


def test_deleted_secret_is_gone(api: Api) -> None:
    api.call("POST", f"{SECRETS}/team-a/gone", json={"data": {"a": b64(b"1")}})
    assert api.call("DELETE", f"{SECRETS}/team-a/gone").status_code == 200
    response = api.call("GET", f"{SECRETS}/team-a/gone")
    assert response.status_code == 404
    assert _error(response)["code"] == "NOT_FOUND"


def test_secret_data_over_one_mebibyte_is_too_large(api: Api) -> None:
    value = b"x" * (constants.MAX_SECRET_BYTES + 1 - len("k"))
    response = api.call("POST", f"{SECRETS}/team-a/huge", json={"data": {"k": b64(value)}})
    assert response.status_code == 413
    assert api.call("GET", f"{SECRETS}/team-a/huge").status_code == 404


def test_secret_data_of_exactly_one_mebibyte_is_stored(api: Api) -> None:
    value = b"x" * (constants.MAX_SECRET_BYTES - len("k"))
    assert api.call("POST", f"{SECRETS}/team-a/max", json={"data": {"k": b64(value)}}).status_code == 201


def test_a_body_over_the_limit_is_refused_before_it_is_read(api: Api) -> None:
    response = api.call(
        "POST",
        f"{SECRETS}/team-a/body",
        data=b"{" + b" " * (3 * 1024 * 1024),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert _error(response)["code"] == "PAYLOAD_TOO_LARGE"


def test_malformed_json_is_a_bad_request(api: Api) -> None:
    response = api.call(
        "POST", f"{SECRETS}/team-a/bad", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert _error(response)["code"] == "MALFORMED_BODY"


def test_a_bad_key_is_reported_with_its_field(api: Api) -> None:
    response = api.call("POST", f"{SECRETS}/team-a/bad", json={"data": {"no/slash": b64(b"x")}})
    assert response.status_code == 400
    assert _error(response)["details"] == {"field": "data.no/slash"}


def test_a_bad_path_is_reported_with_its_field(api: Api) -> None:
    response = api.call("POST", f"{SECRETS}/team-a/Upper", json={"data": {"k": b64(b"x")}})
    assert response.status_code == 400
    assert _error(response)["details"] == {"field": "path"}


def test_listing_is_sorted_and_paginated(api: Api) -> None:
    for name in ("page-c", "page-a", "page-b"):
        api.call("POST", f"{SECRETS}/team-p/{name}", json={"data": {"k": b64(b"x")}})
    first = api.call("GET", f"{SECRETS}?namespace=team-p&limit=2").json()["data"]
    second = api.call("GET", f"{SECRETS}?namespace=team-p&limit=2&continue={first['continue']}").json()[
        "data"
    ]
    paths = [item["path"] for item in first["items"] + second["items"]]
    assert paths == ["team-p/page-a", "team-p/page-b", "team-p/page-c"]
    assert second["continue"] is None


def test_writes_leave_an_audit_line_without_values(api: Api) -> None:
    api.call(
        "POST",
        f"{SECRETS}/team-a/audited",
        json={"data": {"user-key": b64(b"audit-secret-value")}},
        token="team-a",
    )
    lines = [line for line in api.audit_lines() if line["target"] == "team-a/audited"]
    assert lines
    assert (lines[0]["user"], lines[0]["action"], lines[0]["keys"], lines[0]["status"]) == (
        "team-a",
        "create",
        ["user-key"],
        201,
    )
    assert "audit-secret-value" not in api.log.read_text()
    assert b64(b"audit-secret-value") not in api.log.read_text()


def test_metrics_count_requests_by_route_across_workers(api: Api, module_review_api: Any) -> None:
    for _ in range(4):
        api.call("GET", f"{SECRETS}/team-a/routes")
    assert api.metrics_port is not None
    scraped = module_review_api.scrape(api.metrics_port)
    assert scraped.status == 200
    text = scraped.text
    pattern = (
        r'hsm_api_requests_total\{code="200",method="GET",route="/api/v1/hsm/secrets/<path:path>"\} (\d+)'
    )
    counts = [float(value) for value in re.findall(pattern, text)]
    assert counts
    assert sum(counts) >= 4
    assert "hsm_api_metrics_certificate_expiry_timestamp_seconds " in text


def test_metrics_need_a_token_allowed_to_get_them(api: Api, module_review_api: Any) -> None:
    assert api.metrics_port is not None
    assert module_review_api.scrape(api.metrics_port, token=None).status == 401
    assert module_review_api.scrape(api.metrics_port, token=module_review_api.stranger).status == 403


def test_openapi_lists_every_route(api: Api) -> None:
    document = api.call("GET", "/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    expected = {
        ("/api/v1/health", "GET"),
        ("/api/v1/info", "GET"),
        ("/api/v1/openapi.json", "GET"),
        ("/api/v1/hsm/info", "GET"),
        ("/api/v1/hsm/status", "GET"),
        ("/api/v1/hsm/pools", "GET"),
        ("/api/v1/hsm/namespaces", "GET"),
        ("/api/v1/hsm/secrets", "GET"),
        ("/api/v1/hsm/secrets/{path}", "GET"),
        ("/api/v1/hsm/secrets/{path}", "POST"),
        ("/api/v1/hsm/secrets/{path}", "PUT"),
        ("/api/v1/hsm/secrets/{path}", "PATCH"),
        ("/api/v1/hsm/secrets/{path}", "DELETE"),
        ("/api/v1/hsm/secrets/{path}/metadata", "GET"),
        ("/api/v1/hsm/secrets/{path}/checksum", "GET"),
        ("/api/v1/hsm/secrets/{path}/versions", "GET"),
        ("/api/v1/hsm/change-pin", "POST"),
        ("/api/v1/hsm/mirror/sync", "POST"),
        ("/api/v1/hsm/import-legacy", "POST"),
    }
    assert documented == expected
    assert json.dumps(document)


@pytest.mark.parametrize(("method", "route", "body"), ROUTES)
@pytest.mark.parametrize("token", ["admin", None])
def test_every_answer_is_kept_out_of_caches(
    api: Api, method: str, route: str, body: object, token: str | None
) -> None:
    """Answers carry secret values (and errors name secrets): no browser or proxy may store one."""
    response = api.call(method, route, token, json=body)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
