"""GET /hsm/pools: every HSMDevice's HSMPool (phase, device counts, conditions), read from Kubernetes and
authorized like the other device routes (get on hsmdevices)."""

from __future__ import annotations

from typing import Any

import flask.testing
import pytest

from hsm_manager import kube
from hsm_manager.api import app, auth
from hsm_manager.gateway import endpoints
from hsm_manager.mirroring import service

from . import api_test_app
from .conftest import DEVICE_NAMESPACE, Api, pool_object

ROUTE = "/api/v1/hsm/pools"


def test_the_pool_is_shown_with_its_phase_counts_and_conditions(api: Api) -> None:
    response = api.call("GET", ROUTE, token="reader")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["namespace"] == DEVICE_NAMESPACE
    [pool] = data["pools"]
    assert pool["name"] == "pair-pool"
    assert pool["hsmDevice"] == "pair"
    assert (pool["phase"], pool["totalDevices"], pool["availableDevices"]) == ("Ready", 2, 2)
    assert pool["lastAggregationTime"] == "2026-12-03T10:00:00Z"
    assert pool["conditions"][0] == {
        "type": "Ready",
        "status": "True",
        "reason": "Ready",
        "message": "2 devices available",
        "lastTransitionTime": "2026-12-03T09:58:00Z",
    }
    assert pool["error"] == ""


@pytest.mark.parametrize("token", ["nobody", "team-a"])
def test_a_caller_who_may_not_get_hsmdevices_is_refused(api: Api, token: str) -> None:
    response = api.call("GET", ROUTE, token=token)
    assert response.status_code == 403
    assert response.json()["error"]["details"] == {
        "verb": "get",
        "resource": "hsmdevices",
        "namespace": DEVICE_NAMESPACE,
    }


class _Anyone:
    def review_token(self, token: str) -> auth.User | None:
        return auth.User(token)

    def allowed(self, user: auth.User, access: auth.Access) -> bool:
        return True


class _NoPins:
    def update_pin(self, namespace: str, device: str, new_pin: str) -> None:
        raise AssertionError("not called")


class _Unreachable:
    def list_custom(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        raise kube.KubeError("list HSMPool: 403 Forbidden", 403)


def _client(pools: Any) -> flask.testing.FlaskClient:
    anyone = _Anyone()
    mirror = service.Mirror(endpoints.StaticDirectory([]), DEVICE_NAMESPACE)
    deps = app.Deps(auth.Guard(anyone, anyone), mirror, _NoPins(), DEVICE_NAMESPACE, pools)
    return app.create_app(deps).test_client()


def _get(client: flask.testing.FlaskClient) -> tuple[int, dict[str, Any]]:
    response = client.get(ROUTE, headers={"Authorization": "Bearer admin"})
    assert response.json is not None
    return response.status_code, response.json


def test_pools_that_cannot_be_read_are_a_503_that_names_the_kubernetes_call() -> None:
    status, body = _get(_client(_Unreachable()))
    assert status == 503
    assert body["error"]["code"] == "KUBERNETES_UNAVAILABLE"
    assert body["error"]["message"] == "the HSMPools could not be read: list HSMPool: 403 Forbidden"


def test_a_pool_whose_status_cannot_be_parsed_is_listed_with_the_reason_and_no_phase() -> None:
    broken = pool_object("pair", "Ready", [])
    broken["status"]["phase"] = "Sideways"
    status, body = _get(_client(api_test_app.StaticPools([broken])))
    assert status == 200
    [pool] = body["data"]["pools"]
    assert (pool["phase"], pool["conditions"]) == (None, [])
    assert pool["error"] == "unreadable status (1 errors)"
    assert "Sideways" not in pool["error"]


def test_a_pool_not_aggregated_yet_has_no_phase() -> None:
    fresh = pool_object("pair", "Ready", [])
    del fresh["status"]
    status, body = _get(_client(api_test_app.StaticPools([fresh])))
    assert status == 200
    [pool] = body["data"]["pools"]
    assert (pool["phase"], pool["totalDevices"], pool["conditions"], pool["error"]) == (None, None, [], "")
