"""The registry's mTLS channel and the watch streams against a real hsm-agent on a SoftHSM2 token."""

from __future__ import annotations

import threading

import pytest

from hsm_common import checksum
from hsm_manager.decide import model
from hsm_manager.gateway import client, endpoints, errors, watch

from ..polling import wait_until


def test_registry_channel_reaches_the_agent_over_mtls(agent_client: client.AgentClient) -> None:
    version = agent_client.write("ns/link-a", {"k": b"v1"}, None)
    state = agent_client.state("ns/link-a")
    assert (state.version, state.checksum) == (version, checksum.checksum({"k": b"v1"}))


def test_registry_reuses_one_client_per_agent(
    registry: endpoints.AgentRegistry, agent: endpoints.AgentEndpoint
) -> None:
    assert registry.client(agent) is registry.client(agent)


def test_agent_under_another_name_is_refused(
    registry: endpoints.AgentRegistry, agent: endpoints.AgentEndpoint
) -> None:
    impostor = endpoints.AgentEndpoint("hsm", "ns", "hsm-agent-other", "", "n1", agent.address)
    with pytest.raises(errors.Unavailable):
        registry.client(impostor).health()


def test_watch_delivers_a_write(
    registry: endpoints.AgentRegistry, agent: endpoints.AgentEndpoint, agent_client: client.AgentClient
) -> None:
    seen: list[model.Event] = []
    connected = threading.Event()
    streams = watch.Watches(
        registry, lambda _e, event: seen.append(event), lambda _e, up: up and connected.set()
    )
    streams.reconcile([agent])
    try:
        # The stream's first message may be this write or the snapshot: either connects it.
        agent_client.write("ns/link-before", {"k": b"x"}, None)
        wait_until(connected.is_set, 10, "the watch stream")
        version = agent_client.write("ns/link-watched", {"k": b"v1"}, None)
        wait_until(
            lambda: any(e.path == "ns/link-watched" and e.version == version for e in seen),
            5,
            "the change event",
        )
        assert model.Event(model.EventKind.SNAPSHOT_END) in seen
    finally:
        streams.stop_all()
