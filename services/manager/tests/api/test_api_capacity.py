"""Object budgets on two real agents: capacity in /hsm/info, and a write one device has no room for.

hsm-small holds two objects of another tool and may hold three more (its --max-objects); hsm-big has the
SoftHSM2 default. Secrets are written until hsm-small refuses one.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import os
from typing import Any

import pytest
import requests

from .conftest import Agent, Api, b64, make_agent, start_api, stop_api

SECRETS = "/api/v1/hsm/secrets"
FOREIGN_OBJECTS = 2
ROOM = 3
"""Objects hsm-small may hold beyond those on its token when its agent starts."""
SOFTHSM_DEFAULT_BUDGET = 100_000
VALUE_BYTES = 100_000
"""Above the SoftHSM2 default object size: a secret spans several objects, so a refusal could half-write."""


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> collections.abc.Iterator[tuple[Agent, Agent]]:
    """hsm-big (default budget) and hsm-small (budget: its objects at start-up + ROOM)."""
    root = tmp_path_factory.mktemp("budget")
    big, small = make_agent(root, "hsm-big"), make_agent(root, "hsm-small")
    for _ in range(FOREIGN_OBJECTS):
        small.add_foreign_object()
    try:
        big.start()
        # Started once without a budget: whatever the agent keeps on a token is counted before it is set.
        small.start()
        small.stop()
        small.flags = (f"--max-objects={small.token_objects() + ROOM}",)
        small.start()
        yield big, small
    finally:
        big.stop()
        small.stop()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, pair: tuple[Agent, Agent]) -> collections.abc.Iterator[Api]:
    """The API for the device 'mixed' of both agents; no mirror loop, so nothing writes behind the test."""
    served = start_api(tmp_path_factory.mktemp("budget-api"), {"mixed": list(pair)})
    yield served
    stop_api(served)


def _capacity(api: Api) -> dict[str, dict[str, Any]]:
    devices = api.call("GET", "/api/v1/hsm/info").json()["data"]["devices"]
    return {device["device"]: device["capacity"] for device in devices}


@dataclasses.dataclass(frozen=True)
class Refused:
    """The first write hsm-small refused, and its token's object count around it."""

    path: str
    response: requests.Response
    before: int
    after: int


@pytest.fixture(scope="module")
def refused(api: Api, pair: tuple[Agent, Agent]) -> Refused:
    small = pair[1]
    for n in range(10):
        path = f"team-cap/s{n}"
        before = small.token_objects()
        response = api.call("POST", f"{SECRETS}/{path}", json={"data": {"v": b64(os.urandom(VALUE_BYTES))}})
        if response.status_code != 201:
            return Refused(path, response, before, small.token_objects())
    pytest.fail(f"hsm-small took 10 secrets within a budget of {ROOM} more objects")


def test_info_shows_the_budget_and_every_object_on_the_token(api: Api, pair: tuple[Agent, Agent]) -> None:
    small = pair[1]
    shown = _capacity(api)["hsm-small"]
    assert shown["maxObjects"] == int(small.flags[0].split("=")[1])
    assert shown["usedObjects"] == small.token_objects()
    assert shown["usedObjects"] - shown["ownObjects"] == FOREIGN_OBJECTS


def test_a_device_without_a_budget_flag_gets_the_module_default(api: Api) -> None:
    assert _capacity(api)["hsm-big"]["maxObjects"] == SOFTHSM_DEFAULT_BUDGET


def test_a_write_the_small_device_has_no_room_for_is_partial_and_names_it(refused: Refused) -> None:
    assert refused.response.status_code == 207, refused.response.text
    results = {d["device"]: d for d in refused.response.json()["data"]["devices"]}
    assert results["hsm-big"]["success"]
    assert not results["hsm-small"]["success"]
    assert results["hsm-small"]["error"]["code"] == "DEVICE_FULL"


def test_the_refusal_says_how_many_objects_are_used_and_free(refused: Refused) -> None:
    results = {d["device"]: d for d in refused.response.json()["data"]["devices"]}
    message = results["hsm-small"]["error"]["message"]
    assert "used" in message
    assert "free" in message


def test_the_bigger_device_holds_the_refused_secret(api: Api, refused: Refused) -> None:
    body = api.call("GET", f"{SECRETS}/{refused.path}/versions").json()["data"]
    held = {device["device"]: (device["available"], device["present"]) for device in body["devices"]}
    assert held == {"hsm-big": (True, True), "hsm-small": (True, False)}


def test_the_refused_write_leaves_no_object_on_the_small_token(refused: Refused) -> None:
    assert refused.after == refused.before
