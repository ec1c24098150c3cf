"""Where the agents are (Running and Ready agent pods) and one reused mTLS channel per agent.

Usable from the kopf operator and from the API process alike: it needs only a kube.Kube and a TLS source.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Protocol

import grpc

from hsm_common import constants
from hsm_manager import kube
from hsm_manager.decide import agentspec
from hsm_manager.gateway import pki
from hsmproto import channel
from hsmproto.v1 import hsm_pb2_grpc

AGENT_SELECTOR = f"{constants.LABEL_COMPONENT}={agentspec.COMPONENT}"


@dataclasses.dataclass(frozen=True)
class AgentEndpoint:
    """One reachable agent."""

    device: str
    """HSMDevice name."""
    namespace: str
    name: str
    """Agent Deployment name, also the name in its TLS certificate."""
    serial: str
    node: str
    address: str
    """podIP:9090."""


class TLSSource(Protocol):
    """Client TLS material for talking to agents (server_name is set per agent by the registry)."""

    def current(self) -> channel.ClientTLS:
        """The CA, client certificate and key to use now."""


class SecretTLS:
    """Reads the manager's client certificate from its Secret, re-reading at most every ttl seconds."""

    def __init__(self, client: kube.Kube, namespace: str, ttl: float = 60.0) -> None:
        self._client = client
        self._namespace = namespace
        self._ttl = ttl
        # Guards the cached material: channels are opened from many threads.
        self._lock = threading.Lock()
        self._cached: tuple[float, channel.ClientTLS] | None = None

    def current(self) -> channel.ClientTLS:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > self._ttl:
                data = pki.secret_data(self._client.get("Secret", self._namespace, pki.CLIENT_SECRET))
                tls = channel.ClientTLS(data["ca.crt"], data["tls.crt"], data["tls.key"])
                self._cached = (now, tls)
            return self._cached[1]


def _ready(pod: kube.Obj) -> bool:
    status = pod.get("status") or {}
    if (
        pod["metadata"].get("deletionTimestamp")
        or status.get("phase") != "Running"
        or not status.get("podIP")
    ):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def endpoint_of(pod: kube.Obj) -> AgentEndpoint | None:
    """The endpoint of an agent pod, or None when it is not Running and Ready."""
    if not _ready(pod):
        return None
    meta = pod["metadata"]
    labels = meta.get("labels") or {}
    return AgentEndpoint(
        device=labels.get(constants.LABEL_DEVICE, ""),
        namespace=meta["namespace"],
        name=labels.get(agentspec.INSTANCE_LABEL, ""),
        serial=(meta.get("annotations") or {}).get(agentspec.ANNOTATION_SERIAL, ""),
        node=pod["spec"].get("nodeName", ""),
        address=f"{pod['status']['podIP']}:{constants.PORT_AGENT_GRPC}",
    )


@dataclasses.dataclass
class _Open:
    address: str
    tls: channel.ClientTLS
    channel: grpc.Channel
    stub: hsm_pb2_grpc.HSMAgentStub


class AgentRegistry:
    """Agents by device, from their pods, with a short cache; one channel per agent, reopened on change."""

    def __init__(self, client: kube.Kube, tls: TLSSource, cache_seconds: float = 2.0) -> None:
        self._client = client
        self._tls = tls
        self._cache_seconds = cache_seconds
        # Guards _listed and _open: sync workers, watch threads and API threads share one registry.
        self._lock = threading.Lock()
        self._listed: dict[tuple[str, str | None], tuple[float, list[AgentEndpoint]]] = {}
        self._open: dict[tuple[str, str], _Open] = {}

    def endpoints(self, namespace: str, device: str | None = None) -> list[AgentEndpoint]:
        """Running and Ready agents in namespace (of device, when given), sorted by name."""
        key = (namespace, device)
        with self._lock:
            cached = self._listed.get(key)
            if cached and time.monotonic() - cached[0] < self._cache_seconds:
                return list(cached[1])
        selector = AGENT_SELECTOR + (f",{constants.LABEL_DEVICE}={device}" if device else "")
        pods = self._client.list_objects("Pod", namespace, selector)
        found = sorted(
            (e for e in map(endpoint_of, pods) if e is not None and e.name), key=lambda e: (e.device, e.name)
        )
        with self._lock:
            self._listed[key] = (time.monotonic(), found)
        return list(found)

    def devices(self, namespace: str) -> list[str]:
        """HSMDevices of namespace that have at least one Ready agent."""
        return sorted({e.device for e in self.endpoints(namespace)})

    def invalidate(self) -> None:
        """Forget listed endpoints (an agent pod changed)."""
        with self._lock:
            self._listed.clear()

    def stub(self, endpoint: AgentEndpoint) -> hsm_pb2_grpc.HSMAgentStub:
        """The stub of endpoint's channel: mTLS, the agent's name verified against its certificate."""
        tls = dataclasses.replace(self._tls.current(), server_name=endpoint.name)
        key = (endpoint.namespace, endpoint.name)
        with self._lock:
            current = self._open.get(key)
            if current and current.address == endpoint.address and current.tls == tls:
                return current.stub
            if current:
                current.channel.close()
            opened = channel.open_channel(endpoint.address, tls)
            self._open[key] = _Open(endpoint.address, tls, opened, channel.agent_stub(opened))
            return self._open[key].stub

    def close(self) -> None:
        """Close every channel."""
        with self._lock:
            for current in self._open.values():
                current.channel.close()
            self._open.clear()
