"""POST /api/v1/hsm/import-legacy against real agents on SoftHSM2 tokens in the Go operator's layout and a
real gunicorn: the plan, the import and its rerun, mirroring to the device without legacy objects, input
checks and the permissions it needs."""

from __future__ import annotations

import base64
import collections.abc
import json
import os
import pathlib
import subprocess
import sys
from typing import Any

import pytest

from .conftest import HERE, PIN, Agent, Api, make_agent, start_api, stop_api

ROUTE = "/api/v1/hsm/import-legacy"
PATHS = 20


@pytest.fixture
def legacy_pair(tmp_path: pathlib.Path) -> collections.abc.Iterator[tuple[list[Agent], dict[str, Any]]]:
    """Two agents of the device 'pair'; only hsm-a's token holds the Go operator's objects."""
    pair = [make_agent(tmp_path, "hsm-a"), make_agent(tmp_path, "hsm-b")]
    written = subprocess.run(
        [sys.executable, str(HERE / "legacy_tokens.py"), "hsm-a", str(PATHS)],
        env={**os.environ, "SOFTHSM2_CONF": str(pair[0].workdir / "softhsm2.conf")},
        input=PIN, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    for agent in pair:
        agent.start()
    yield pair, json.loads(written.stdout)
    for agent in pair:
        agent.stop()


@pytest.fixture
def legacy_api(
    tmp_path: pathlib.Path, legacy_pair: tuple[list[Agent], dict[str, Any]]
) -> collections.abc.Iterator[Api]:
    served = start_api(tmp_path / "api", {"pair": legacy_pair[0]}, workers=1, threads=2)
    yield served
    stop_api(served)


@pytest.fixture
def legacy(legacy_pair: tuple[list[Agent], dict[str, Any]]) -> dict[str, Any]:
    return legacy_pair[1]


def body(legacy: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"defaultNamespace": "team-a", "knownPaths": legacy["known"], **fields}


def outcomes(response: Any, device: str = "hsm-a") -> dict[str, str]:
    answer = next(item for item in response.json()["data"]["devices"] if item["device"] == device)
    return {path["legacyPath"]: path["outcome"] for path in answer["paths"]}


def test_the_dry_run_shows_the_plan_per_device_and_writes_nothing(legacy_api: Api, legacy: dict) -> None:
    response = legacy_api.call("POST", ROUTE, json=body(legacy))
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["applied"] is False
    assert [(item["device"], item["error"]) for item in data["devices"]] == [("hsm-a", None), ("hsm-b", None)]
    assert {p for p, outcome in outcomes(response).items() if outcome == "would-import"} == set(
        legacy["ready"]
    )
    assert outcomes(response, "hsm-b") == {}
    hsm_a = data["devices"][0]
    assert hsm_a["legacyObjects"] == legacy["objects"]
    assert {item["label"] for item in hsm_a["undecided"]} == set(legacy["ambiguousLabels"])
    listed = legacy_api.call("GET", "/api/v1/hsm/secrets?namespace=team-a").json()["data"]
    assert listed["items"] == []


def test_apply_imports_with_the_legacy_values_and_the_mirror_sync_copies_them(
    legacy_api: Api, legacy: dict
) -> None:
    response = legacy_api.call("POST", ROUTE, json=body(legacy, apply=True))
    assert response.status_code == 200, response.text
    assert {p for p, outcome in outcomes(response).items() if outcome == "imported"} == set(legacy["ready"])
    for path in legacy["ready"]:
        secret = legacy_api.call("GET", f"/api/v1/hsm/secrets/team-a/{path}").json()["data"]
        assert secret["data"] == legacy["secrets"][path]
    synced = legacy_api.call("POST", "/api/v1/hsm/mirror/sync", json={"device": "pair", "prefix": "team-a/"})
    assert synced.status_code == 200, synced.text
    versions = legacy_api.call("GET", "/api/v1/hsm/secrets/team-a/plain/versions").json()["data"]
    assert versions["inSync"] is True
    assert sorted(device["device"] for device in versions["devices"]) == ["hsm-a", "hsm-b"]


def test_a_rerun_finds_the_paths_imported_and_removes_the_legacy_objects_when_asked(
    legacy_api: Api, legacy: dict
) -> None:
    legacy_api.call("POST", ROUTE, json=body(legacy, apply=True))
    again = legacy_api.call("POST", ROUTE, json=body(legacy, apply=True, removeLegacy=True))
    assert again.status_code == 200, again.text
    ready = set(legacy["ready"])
    assert {p for p, outcome in outcomes(again).items() if outcome == "already-imported"} == ready
    assert again.json()["data"]["summary"]["legacyRemoved"] > 0
    last = legacy_api.call("POST", ROUTE, json=body(legacy, apply=True, removeLegacy=True))
    assert not set(outcomes(last)) & ready


def test_the_response_never_holds_a_value(legacy_api: Api, legacy: dict) -> None:
    text = legacy_api.call("POST", ROUTE, json=body(legacy, apply=True)).text
    values = [base64.b64decode(v) for data in legacy["secrets"].values() for v in data.values()]
    long_values = [value for value in values if len(value) >= 8]
    assert not [v for v in long_values if base64.b64encode(v).decode() in text or v.hex() in text]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"defaultNamespace": None}, "defaultNamespace", "name a 'defaultNamespace'"),
        ({"removeLegacy": True}, "removeLegacy", "removeLegacy needs apply"),
        ({"mapping": {"team-0": "Bad_NS"}}, "mapping.team-0", ""),
        ({"knownPaths": {"/": []}}, "knownPaths", "a known path must be a legacy path"),
        ({"surprise": 1}, "surprise", "surprise: Extra inputs are not permitted"),
    ],
)
def test_a_permitted_caller_learns_what_is_wrong_with_the_body(
    legacy_api: Api, legacy: dict, fields: dict, field: str, message: str
) -> None:
    sent = {key: value for key, value in body(legacy, **fields).items() if value is not None}
    response = legacy_api.call("POST", ROUTE, json=sent)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["details"]["field"] == field
    assert error["message"].startswith(message)


def test_importing_needs_update_on_the_devices(legacy_api: Api, legacy: dict) -> None:
    response = legacy_api.call("POST", ROUTE, json=body(legacy), token="team-a")
    assert response.status_code == 403
    assert response.json()["error"]["details"]["resource"] == "hsmdevices"


def test_importing_needs_create_on_hsmsecrets_in_every_target_namespace(
    legacy_api: Api, legacy: dict
) -> None:
    allowed = legacy_api.call("POST", ROUTE, json=body(legacy), token="importer")
    assert allowed.status_code == 200, allowed.text
    mapped = body(legacy, mapping={"team-1": "prod"})
    refused = legacy_api.call("POST", ROUTE, json=mapped, token="importer")
    assert refused.status_code == 403
    assert refused.json()["error"]["details"] == {
        "verb": "create",
        "resource": "hsmsecrets",
        "namespace": "prod",
    }


def test_an_unknown_device_is_not_found(legacy_api: Api, legacy: dict) -> None:
    response = legacy_api.call("POST", ROUTE, json=body(legacy, device="nope"))
    assert response.status_code == 404
