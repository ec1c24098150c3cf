"""Mirroring across two real agents: partial writes (207), repair, no resurrection, one value per version.

The periodic repair runs in the operator; here POST /hsm/mirror/sync runs the same repair on demand.
"""

from __future__ import annotations

import collections.abc
import concurrent.futures
import threading
import time

import pytest

from hsmproto import channel

from ..polling import wait_until
from .conftest import Agent, Api, b64

SECRETS = "/api/v1/hsm/secrets"


#: Every channel of every gunicorn worker has tried an agent again this long after the agent's return.
RECONNECTED_WITHIN = 1.2 * channel.MAX_RECONNECT_BACKOFF_MS / 1000 + 0.5


def _all_connected(api: Api) -> bool:
    devices = api.call("GET", "/api/v1/hsm/status").json()["data"]["devices"]
    return all(device["connected"] for device in devices)


@pytest.fixture(autouse=True)
def _connected(api: Api, agent_pair: list[Agent]) -> None:
    """Start every test with both agents reachable from every worker.

    Each worker has its own channels, and a restart leaves them backing off: asking a few times cannot
    show that both workers reconnected (one may answer them all), so wait out the backoff's bound first.
    """
    settled = max(agent.ready_at for agent in agent_pair) + RECONNECTED_WITHIN
    time.sleep(max(0.0, settled - time.monotonic()))
    wait_until(lambda: _all_connected(api), 30, "both agents reachable")


@pytest.fixture
def one_down(agent_pair: list[Agent]) -> collections.abc.Iterator[Agent]:
    """hsm-b stopped for the test, started again afterwards whatever happened."""
    down = agent_pair[1]
    down.stop()
    yield down
    if down.process is None:
        down.start()


def _versions(api: Api, path: str) -> dict[str, dict[str, object]]:
    body = api.call("GET", f"{SECRETS}/{path}/versions").json()["data"]
    return {device["device"]: device for device in body["devices"]}


def _in_sync(api: Api, path: str) -> bool:
    return bool(api.call("GET", f"{SECRETS}/{path}/versions").json()["data"]["inSync"])


def _repair(api: Api, path: str) -> None:
    api.call("POST", "/api/v1/hsm/mirror/sync", json={"prefix": path})


def _in_sync_with(api: Api, path: str, field: str, expected: object) -> bool:
    """In sync, with hsm-b's ``field`` as expected, in ONE answer: each gunicorn worker learns of a returning
    agent on its own, so a second request may still find hsm-b unavailable in another worker."""
    body = api.call("GET", f"{SECRETS}/{path}/versions").json()["data"]
    devices = {device["device"]: device for device in body["devices"]}
    return bool(body["inSync"]) and devices["hsm-b"].get(field) == expected


def test_a_write_reaches_every_device_with_the_same_version(api: Api) -> None:
    api.call("POST", f"{SECRETS}/team-m/both", json={"data": {"k": b64(b"1")}})
    assert api.call("PUT", f"{SECRETS}/team-m/both", json={"data": {"k": b64(b"2")}}).status_code == 200
    devices = _versions(api, "team-m/both")
    assert devices["hsm-a"]["version"] == devices["hsm-b"]["version"] == 2
    assert devices["hsm-a"]["checksum"] == devices["hsm-b"]["checksum"]


def test_a_write_with_one_device_down_is_partial_and_later_repaired(api: Api, one_down: Agent) -> None:
    response = api.call("POST", f"{SECRETS}/team-m/partial", json={"data": {"k": b64(b"v")}})
    assert response.status_code == 207
    body = response.json()
    assert body["error"]["code"] == "PARTIAL_FAILURE"
    results = {d["device"]: d["success"] for d in body["data"]["devices"]}
    assert results == {"hsm-a": True, "hsm-b": False}
    assert api.call("GET", f"{SECRETS}/team-m/partial").json()["data"]["data"] == {"k": b64(b"v")}
    one_down.start()
    wait_until(
        lambda: _repair(api, "team-m/partial") or _in_sync_with(api, "team-m/partial", "version", 1),
        30,
        "the repair brings hsm-b to version 1",
    )


def test_a_secret_deleted_while_a_device_was_offline_stays_deleted(api: Api, agent_pair: list[Agent]) -> None:
    api.call("POST", f"{SECRETS}/team-m/doomed", json={"data": {"k": b64(b"v")}})
    agent_pair[1].stop()
    try:
        assert api.call("DELETE", f"{SECRETS}/team-m/doomed").status_code == 207
    finally:
        agent_pair[1].start()
    wait_until(
        lambda: _repair(api, "team-m/doomed") or _in_sync_with(api, "team-m/doomed", "deleted", True),
        30,
        "the repair spreads the tombstone",
    )
    assert api.call("GET", f"{SECRETS}/team-m/doomed").status_code == 404
    listed = api.call("GET", f"{SECRETS}?namespace=team-m").json()["data"]["items"]
    assert "team-m/doomed" not in [item["path"] for item in listed]


def test_mirror_sync_reports_what_it_checked(api: Api) -> None:
    api.call("POST", f"{SECRETS}/team-m/synced", json={"data": {"k": b64(b"v")}})
    response = api.call("POST", "/api/v1/hsm/mirror/sync", json={"prefix": "team-m/"})
    assert response.status_code == 200
    report = response.json()["data"]
    assert report["pathsChecked"] >= 1
    assert report["unavailableDevices"] == []


def test_every_device_down_is_unavailable_and_writes_nothing(api: Api, agent_pair: list[Agent]) -> None:
    for agent in agent_pair:
        agent.stop()
    try:
        response = api.call("POST", f"{SECRETS}/team-m/nowhere", json={"data": {"k": b64(b"v")}})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "DEVICE_UNAVAILABLE"
    finally:
        for agent in agent_pair:
            agent.start()
    # Until the answering gunicorn worker has seen the agents return, it still says 503.
    statuses: list[int] = []
    wait_until(
        lambda: (
            statuses.append(api.call("GET", f"{SECRETS}/team-m/nowhere").status_code) or statuses[-1] != 503
        ),
        30,
        "the API to reach the agents again",
    )
    assert statuses[-1] == 404


def test_change_pin_refuses_when_a_device_is_down(api: Api, one_down: Agent, agent_pair: list[Agent]) -> None:
    response = api.call("POST", "/api/v1/hsm/change-pin", json={"oldPin": "123456", "newPin": "777777"})
    assert response.status_code == 503
    assert [agent.pin_file.read_text() for agent in agent_pair] == ["123456", "123456"]


def test_change_pin_updates_every_device_and_the_pin_files(api: Api, agent_pair: list[Agent]) -> None:
    new_pin = "654321"
    response = api.call("POST", "/api/v1/hsm/change-pin", json={"oldPin": "123456", "newPin": new_pin})
    assert response.status_code == 200, response.text
    assert new_pin not in response.text
    assert [agent.pin_file.read_text() for agent in agent_pair] == [new_pin, new_pin]
    back = api.call("POST", "/api/v1/hsm/change-pin", json={"oldPin": new_pin, "newPin": "123456"})
    assert back.status_code == 200, back.text
    assert new_pin not in api.log.read_text()


def test_change_pin_with_a_wrong_old_pin_changes_nothing(api: Api, agent_pair: list[Agent]) -> None:
    response = api.call("POST", "/api/v1/hsm/change-pin", json={"oldPin": "000000", "newPin": "999999"})
    assert response.status_code == 422, response.text
    assert [agent.pin_file.read_text() for agent in agent_pair] == ["123456", "123456"]
    api.call("POST", f"{SECRETS}/team-m/after-pin", json={"data": {"k": b64(b"v")}})
    assert api.call("GET", f"{SECRETS}/team-m/after-pin").status_code == 200


def test_concurrent_writes_without_if_match_all_land_and_devices_converge(api: Api) -> None:
    api.call("POST", f"{SECRETS}/team-m/raced", json={"data": {"k": b64(b"0")}})

    def put(n: int) -> int:
        return api.call(
            "PUT", f"{SECRETS}/team-m/raced", json={"data": {"k": b64(str(n).encode())}}
        ).status_code

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        statuses = list(pool.map(put, range(12)))
    assert set(statuses) == {200}, statuses
    assert _in_sync(api, "team-m/raced")


def test_two_writers_with_the_same_if_match_never_leave_two_values_under_one_version(api: Api) -> None:
    """Both clients PUT at the same moment with the same If-Match: one gets 200, the other 412, and both
    devices hold the winner's value under the new version (measured before: 12 of 40 rounds diverged)."""
    path = "team-m/contended"
    api.call("POST", f"{SECRETS}/{path}", json={"data": {"k": b64(b"start")}})
    barrier = threading.Barrier(2)

    def put(version: int, value: bytes) -> int:
        barrier.wait()
        body = {"data": {"k": b64(value)}}
        return api.call(
            "PUT", f"{SECRETS}/{path}", json=body, headers={"If-Match": f'"{version}"'}
        ).status_code

    for round_ in range(40):
        version = _versions(api, path)["hsm-a"]["version"]
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            statuses = sorted(pool.map(put, [version, version], [b"left-%d" % round_, b"right-%d" % round_]))
        assert statuses == [200, 412], (round_, statuses)
        devices = _versions(api, path)
        assert devices["hsm-a"]["version"] == devices["hsm-b"]["version"] == version + 1, (round_, devices)
        assert devices["hsm-a"]["checksum"] == devices["hsm-b"]["checksum"], (round_, devices)
