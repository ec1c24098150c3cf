"""Property-based fuzzing of the running API from its own OpenAPI document (schemathesis).

Every generated request goes to real gunicorn and real agents. Properties: no 5xx, responses match
the document, and no partial write: a refused write changes nothing, an accepted one leaves both
devices with the same version.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from schemathesis import checks as st_checks

from hsm_manager.api import openapi

from .conftest import Api

ADMIN = {"Authorization": "Bearer admin"}
CASES_PER_OPERATION = 150
MIN_TOTAL_CASES = 2000
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
_counted: list[str] = []


SCHEMA = schemathesis.openapi.from_dict(openapi.document())
OPERATIONS = [(path, method) for path, item in openapi.document()["paths"].items() for method in item]


def _secret_path(case: Any) -> str | None:
    if "{path}" not in case.path or not case.path_parameters:
        return None
    value = case.path_parameters.get("path")
    return value if isinstance(value, str) else None


def _state(api: Api, path: str) -> Any:
    quoted = urllib.parse.quote(path, safe="/")
    response = requests.get(f"{api.url}/api/v1/hsm/secrets/{quoted}/versions", headers=ADMIN, timeout=10)
    if response.status_code != 200:
        return response.status_code
    devices = response.json()["data"]["devices"]
    return [(d["device"], d.get("version"), d.get("checksum"), d.get("deleted")) for d in devices]


@pytest.mark.parametrize(("route", "method"), OPERATIONS)
def test_the_api_never_fails_and_never_writes_partially(api: Api, route: str, method: str) -> None:
    strategy = SCHEMA[route][method].as_strategy()

    @hypothesis.settings(
        max_examples=CASES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        derandomize=True,
        database=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @hypothesis.given(case=strategy)
    def run(case: Any) -> None:
        _check(api, case)

    run()


def _check(api: Api, case: Any) -> None:
    _counted.append(case.operation.label)
    path = _secret_path(case) if case.method.upper() in WRITES else None
    before = _state(api, path) if path else None
    response = case.call(base_url=api.url, headers=ADMIN, timeout=30)
    assert response.status_code < 500, response.text
    case.validate_response(response, checks=[st_checks.not_a_server_error])
    if path is None:
        return
    after = _state(api, path)
    if response.status_code >= 400:
        assert after == before, (
            f"refused write ({response.status_code}) changed {path!r}: {before} -> {after}"
        )
    elif isinstance(after, list):
        assert len({(version, checksum, deleted) for _, version, checksum, deleted in after}) == 1, after


def test_the_fuzzing_ran_enough_cases() -> None:
    print(f"fuzzed {len(_counted)} cases over {len(set(_counted))} operations")
    assert len(_counted) >= MIN_TOTAL_CASES, f"only {len(_counted)} cases"
