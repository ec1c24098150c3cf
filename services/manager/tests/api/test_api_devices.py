"""Device info: the agent's capacity passed through in the API's camelCase, unreported memory left out."""

from __future__ import annotations

from typing import Any

from hsm_manager.api import agents, devices
from hsmproto.v1 import hsm_pb2


class _Agent:
    """Answers GetInfo with a fixed response, as an agent stub would."""

    def __init__(self, response: hsm_pb2.GetInfoResponse) -> None:
        self._response = response

    def GetInfo(self, request: hsm_pb2.GetInfoRequest, **_: Any) -> hsm_pb2.GetInfoResponse:
        return self._response


class _Provider:
    def __init__(self, responses: dict[str, hsm_pb2.GetInfoResponse]) -> None:
        self._responses = responses

    def devices(self) -> list[str]:
        return ["pair"]

    def group(self, device: str) -> agents.Group:
        return agents.Group(device, "ns", tuple(agents.Member(name, "") for name in sorted(self._responses)))

    def stub(self, member: agents.Member) -> Any:
        return _Agent(self._responses[member.name])


def _info(capacity: hsm_pb2.Capacity | None) -> dict[str, Any]:
    response = hsm_pb2.GetInfoResponse(device_name="hsm-a", secret_count=2)
    if capacity is not None:
        response.capacity.CopyFrom(capacity)
    provider = _Provider({"hsm-a": response})
    [entry] = devices.info(provider, provider.group("pair"))["devices"]
    found: dict[str, Any] = entry
    return found


FIGURES = hsm_pb2.Capacity(max_objects=120, used_objects=30, free_objects=89, own_objects=12, own_bytes=4000)


def test_capacity_figures_reach_the_answer_in_camel_case() -> None:
    assert _info(FIGURES)["capacity"] == {
        "maxObjects": 120,
        "usedObjects": 30,
        "freeObjects": 89,
        "ownObjects": 12,
        "ownBytes": 4000,
    }


def test_memory_is_shown_only_where_the_token_reports_it() -> None:
    figures = hsm_pb2.Capacity()
    figures.CopyFrom(FIGURES)
    figures.total_memory = 65536
    figures.free_memory = 0
    capacity = _info(figures)["capacity"]
    assert (capacity["totalMemory"], capacity["freeMemory"]) == (65536, 0)


def test_an_agent_that_reports_no_capacity_has_none_in_the_answer() -> None:
    entry = _info(None)
    assert entry["available"]
    assert "capacity" not in entry
