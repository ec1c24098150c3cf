"""Authentication, then authorization, then validation, walked over every operation the served OpenAPI lists.

Each operation gets valid and invalid path parameters, each query and header parameter invalid in turn and
invalid bodies (unknown fields, wrong types, malformed JSON, another content type). Without a token every
request is 401 and without permission 403, and neither answer names a field the route accepts (an
operation that documents no 403 answers a caller allowed nothing with nothing listed); a permitted caller
still learns what is wrong, in today's words.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import urllib.parse
from typing import Any

import pytest
import requests

from .conftest import Api

#: Path parameter values, valid and not, that must not change the answer to a caller without permission.
PATHS = [
    "team-a/walk",
    "Team-A/Walk",
    "team-a",
    "team-a/bad_name",
    "-a/b",
    "team-a/metadata",
    "team-a/x/",
    "n" * 300 + "/x",
]
#: A valid value of each required parameter, so that one invalid parameter at a time is what is judged.
VALID = {"namespace": "team-a"}
#: An invalid value of every parameter the document has (a new parameter must add one here).
INVALID = {
    "namespace": "Bad_NS",
    "prefix": "UPPER",
    "limit": "-1",
    "continue": "a",
    "device": "",
    "key": "no/slash",
    "If-Match": "abc",
}
#: Invalid bodies: (content type, raw body); fields of the operation's own schema are added per operation.
BODIES = [
    ("application/json", b'{"unexpected": 1}'),
    ("application/json", b"{nope"),
    ("application/json", b"[]"),
    ("application/json", b""),
    ("text/plain", b'{"device": "pair"}'),
]
NO_AUTHORIZATION: dict[str, str] = {}


@dataclasses.dataclass(frozen=True)
class Case:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None

    def __str__(self) -> str:
        body = self.body[:60].decode(errors="replace") if self.body is not None else None
        return f"{self.method} {self.url} {self.headers} {body!r}"


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def _fields(document: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    """Every property name of a request schema, nested objects included."""
    schema = _resolve(document, schema)
    found = set(schema.get("properties", {}))
    for sub in schema.get("properties", {}).values():
        found |= _fields(document, sub)
    return found


def _body_fields(document: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    body = operation.get("requestBody")
    if body is None:
        return set()
    return _fields(document, body["content"]["application/json"]["schema"])


def _cases(document: dict[str, Any], route: str, method: str, operation: dict[str, Any]) -> list[Case]:
    params = operation.get("parameters", [])
    query = {p["name"]: VALID[p["name"]] for p in params if p["in"] == "query" and p["required"]}
    variants: list[tuple[dict[str, str], dict[str, str]]] = [({}, {}), (query, {})]
    for param in params:
        if param["in"] == "query":
            variants.append(({**query, param["name"]: INVALID[param["name"]]}, {}))
        elif param["in"] == "header":
            variants.append((query, {param["name"]: INVALID[param["name"]]}))
    fields = sorted(_body_fields(document, operation))
    bodies = list(BODIES)
    if fields:
        bodies.append(("application/json", json.dumps(dict.fromkeys(fields, 12345)).encode()))
        bodies.append(("application/json", json.dumps(dict.fromkeys(fields, "")).encode()))
    elif "requestBody" not in operation:
        bodies = [("", b""), ("application/json", b'{"unexpected": 1}')]
    paths = PATHS if "{path}" in route else [""]
    cases: list[Case] = []
    for path, (args, headers), (content_type, body) in itertools.product(paths, variants, bodies):
        url = route.replace("{path}", urllib.parse.quote(path, safe="/"))
        if args:
            url += "?" + urllib.parse.urlencode(args)
        sent = {**headers, **({"Content-Type": content_type} if content_type else {})}
        case = Case(method.upper(), url, sent, body if body or content_type else None)
        if case not in cases:
            cases.append(case)
    return cases


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every operation that needs a token (the document says which do not)."""
    return [
        (route, method, operation)
        for route, item in document["paths"].items()
        for method, operation in item.items()
        if operation.get("security", document["security"])
    ]


@pytest.fixture(scope="module")
def document(api_without_devices: Api) -> dict[str, Any]:
    response = api_without_devices.call("GET", "/api/v1/openapi.json")
    assert response.status_code == 200, response.text
    served: dict[str, Any] = response.json()
    return served


def _walk(api: Api, document: dict[str, Any], authorization: dict[str, str], status: int, code: str) -> None:
    failures = []
    walked = set()
    with requests.Session() as session:
        for route, method, operation in _operations(document):
            walked.add((route, method))
            fields = _body_fields(document, operation)
            # An operation that documents no 403 is open to every caller with a valid token: it takes no
            # input and answers only with what the caller may see, so a caller allowed nothing gets 200.
            open_to_callers = status == 403 and "403" not in operation["responses"]
            for case in _cases(document, route, method, operation):
                response = session.request(
                    case.method,
                    api.url + case.url,
                    headers={**case.headers, **authorization},
                    data=case.body,
                    timeout=30,
                    allow_redirects=False,
                )
                if open_to_callers:
                    problem = _answered_with_nothing(response)
                else:
                    problem = _problem(response, status, code, fields)
                if problem:
                    failures.append(f"{case} -> {problem}")
    assert ("/api/v1/hsm/change-pin", "post") in walked
    assert len(walked) == sum(len(item) for item in document["paths"].values()) - 1  # all but /health
    assert not failures, f"{len(failures)} requests answered before authorization:\n" + "\n".join(failures)


def _answered_with_nothing(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} {response.text[:120]!r}"
    listed = [value for value in body.get("data", {}).values() if isinstance(value, list) and value]
    if response.status_code != 200 or listed:
        return f"{response.status_code} {response.text[:200]!r}"
    return ""


def _problem(response: requests.Response, status: int, code: str, fields: set[str]) -> str:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code} {response.text[:120]!r}"
    said = f"{response.status_code} {error.get('code')} {error.get('message')!r} {error.get('details')}"
    if response.status_code != status or error.get("code") != code:
        return said
    if "field" in error["details"]:
        return f"names a field: {said}"
    text = json.dumps([error["message"], error["details"]])
    named = sorted(field for field in fields if re.search(rf"\b{re.escape(field)}\b", text))
    if named:
        return f"names {named}: {said}"
    return ""


@pytest.mark.parametrize(
    "authorization", [NO_AUTHORIZATION, {"Authorization": "Bearer forged"}], ids=["none", "forged"]
)
def test_every_operation_refuses_a_caller_without_a_valid_token_whatever_the_request_holds(
    api_without_devices: Api, document: dict[str, Any], authorization: dict[str, str]
) -> None:
    _walk(api_without_devices, document, authorization, 401, "UNAUTHENTICATED")


def test_every_operation_refuses_a_caller_without_permission_whatever_the_request_holds(
    api_without_devices: Api, document: dict[str, Any]
) -> None:
    _walk(api_without_devices, document, {"Authorization": "Bearer nobody"}, 403, "FORBIDDEN")


#: (method, route, content type, body, status, message): what a permitted caller is told, as before.
PERMITTED = [
    (
        "POST",
        "/api/v1/hsm/change-pin",
        "application/json",
        b'{"oldPin": "1", "newPin": "123456"}',
        400,
        "oldPin: String should have at least 4 characters",
    ),
    (
        "POST",
        "/api/v1/hsm/mirror/sync",
        "application/json",
        b'{"unexpected": 1}',
        400,
        "unexpected: Extra inputs are not permitted",
    ),
    ("POST", "/api/v1/hsm/change-pin", "text/plain", b"{}", 415, "request body must be application/json"),
    ("GET", "/api/v1/hsm/secrets", "", None, 400, "query parameter 'namespace' is required"),
    (
        "GET",
        "/api/v1/hsm/secrets?namespace=team-a&limit=0",
        "",
        None,
        400,
        "limit must be an integer from 1 to 1000",
    ),
    ("GET", "/api/v1/hsm/secrets?namespace=team-a&continue=a", "", None, 400, "invalid continue token"),
    ("GET", "/api/v1/hsm/secrets?namespace=a/b", "", None, 400, "namespace must be a single segment"),
    ("GET", "/api/v1/hsm/secrets/team-a", "", None, 400, "path 'team-a' must be '<namespace>/<name>'"),
    (
        "PUT",
        "/api/v1/hsm/secrets/team-a/metadata",
        "application/json",
        b'{"data": {}}',
        400,
        "a secret's last path segment cannot be 'metadata': it names a sub-resource in this API",
    ),
]


@pytest.mark.parametrize(("method", "route", "content_type", "body", "status", "message"), PERMITTED)
def test_a_permitted_caller_still_learns_what_is_wrong(
    api_without_devices: Api,
    method: str,
    route: str,
    content_type: str,
    body: bytes | None,
    status: int,
    message: str,
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = api_without_devices.call(method, route, headers=headers, data=body)
    assert (response.status_code, response.json()["error"]["message"]) == (status, message)


def test_a_caller_permitted_in_one_namespace_may_not_learn_about_a_malformed_one(
    api_without_devices: Api,
) -> None:
    response = api_without_devices.call("GET", "/api/v1/hsm/secrets?namespace=Team-A", token="team-a")
    assert response.status_code == 403
    assert response.json()["error"]["details"]["namespace"] == "Team-A"


def test_a_caller_permitted_in_a_namespace_learns_what_is_wrong_there(api_without_devices: Api) -> None:
    response = api_without_devices.call("GET", "/api/v1/hsm/secrets?namespace=team-a&limit=0", token="team-a")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"field": "limit"}
