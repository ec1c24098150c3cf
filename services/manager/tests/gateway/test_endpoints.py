"""The registry finds agents from their pods: Running and Ready ones only, sorted, with a short cache."""

from __future__ import annotations

from typing import Any

from hsm_common import constants
from hsm_manager.decide import agentspec
from hsm_manager.gateway import endpoints

from .. import fakes
from .conftest import StaticTLS


def agent_pod(name: str, device: str, ip: str, ready: bool = True) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {
            "name": f"{name}-pod",
            "namespace": "ns",
            "labels": {
                constants.LABEL_COMPONENT: agentspec.COMPONENT,
                constants.LABEL_DEVICE: device,
                agentspec.INSTANCE_LABEL: name,
            },
            "annotations": {agentspec.ANNOTATION_SERIAL: f"serial-{name}"},
        },
        "spec": {"nodeName": "n1"},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def registry(client: fakes.FakeKube, cache_seconds: float = 0.0) -> endpoints.AgentRegistry:
    return endpoints.AgentRegistry(client, StaticTLS(None), cache_seconds=cache_seconds)  # type: ignore[arg-type]


def test_only_ready_agents_are_endpoints_sorted_by_device_and_name() -> None:
    client = fakes.FakeKube()
    client.add(agent_pod("b-agent", "hsm", "192.0.2.2"))
    client.add(agent_pod("a-agent", "hsm", "192.0.2.1"))
    client.add(agent_pod("c-agent", "hsm", "192.0.2.3", ready=False))
    found = registry(client).endpoints("ns", "hsm")
    assert [(e.name, e.serial, e.address) for e in found] == [
        ("a-agent", "serial-a-agent", f"192.0.2.1:{constants.PORT_AGENT_GRPC}"),
        ("b-agent", "serial-b-agent", f"192.0.2.2:{constants.PORT_AGENT_GRPC}"),
    ]


def test_devices_are_those_with_a_ready_agent() -> None:
    client = fakes.FakeKube()
    client.add(agent_pod("a-agent", "hsm", "192.0.2.1"))
    client.add(agent_pod("b-agent", "other", "192.0.2.2", ready=False))
    assert registry(client).devices("ns") == ["hsm"]


def test_devices_with_agents_that_are_not_ready_are_still_deployed() -> None:
    client = fakes.FakeKube()
    client.add(agent_pod("a-agent", "hsm", "192.0.2.1"))
    client.add(agent_pod("b-agent", "other", "192.0.2.2", ready=False))
    assert registry(client).deployed("ns") == ["hsm", "other"]


def test_a_new_agent_shows_after_invalidate() -> None:
    client = fakes.FakeKube()
    found = registry(client, cache_seconds=60)
    assert found.endpoints("ns") == []
    client.add(agent_pod("a-agent", "hsm", "192.0.2.1"))
    assert found.endpoints("ns") == []
    found.invalidate()
    assert [e.name for e in found.endpoints("ns")] == ["a-agent"]
