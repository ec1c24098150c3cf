"""Where the agents are, and one reused mutual-TLS channel (and client) per agent.

Production finds agents from their pods (Running and Ready agent pods, with a short cache); tests and a
manager-less dev setup name them (``StaticDirectory``). Both serve the operator and the API alike.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

import grpc

from hsm_common import constants
from hsm_manager import kube
from hsm_manager.decide import agentspec
from hsmproto import channel

from . import client, copies, peek, pki

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
    """host:port of its gRPC server."""


class Directory(Protocol):
    """Where agents are found and how they are reached."""

    def devices(self, namespace: str) -> list[str]:
        """HSMDevices of namespace that have at least one reachable agent."""

    def deployed(self, namespace: str) -> list[str]:
        """HSMDevices of namespace that have agents, Ready or not (a device whose agents are all down)."""

    def endpoints(self, namespace: str, device: str | None = None) -> list[AgentEndpoint]:
        """Reachable agents in namespace (of device, when given), sorted by device and name."""

    def client(self, endpoint: AgentEndpoint) -> client.AgentClient:
        """The client of endpoint (its channel is reused)."""

    def invalidate(self) -> None:
        """Forget what was listed (an agent pod changed)."""

    def close(self) -> None:
        """Close every channel."""


class TLSSource(Protocol):
    """Client TLS material for talking to agents (server_name is set per agent)."""

    def current(self) -> channel.ClientTLS:
        """The CA, client certificate and key to use now."""


class SecretTLS:
    """Reads the manager's client certificate from its Secret, re-reading at most every ttl seconds."""

    def __init__(self, kube_client: kube.Kube, namespace: str, ttl: float = 60.0) -> None:
        self._client = kube_client
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
    tls: channel.ClientTLS | None
    channel: grpc.Channel
    client: client.AgentClient
    copies: copies.Copies | None


class _Channels:
    """One channel (and client) per agent, reopened when its address or TLS material changes; with
    copies_bytes, each client keeps up to that many bytes of the agent's answers (gateway.copies)."""

    def __init__(self, timeout: float, observe: client.Observer | None, copies_bytes: int) -> None:
        self._timeout = timeout
        self._observe = observe
        self._copies_bytes = copies_bytes
        # Guards _open: sync workers, watch threads and API threads share one directory.
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str], _Open] = {}
        self._retired: list[tuple[threading.Timer, grpc.Channel]] = []

    def client(self, endpoint: AgentEndpoint, tls: channel.ClientTLS | None) -> client.AgentClient:
        key = (endpoint.namespace, endpoint.name)
        with self._lock:
            current = self._open.get(key)
            if current and current.address == endpoint.address and current.tls == tls:
                return current.client
            if current:
                self._retire(current)
            opened = channel.open_channel(endpoint.address, tls)
            expiry = peek.Expiry(endpoint.address, tls) if tls is not None else None
            stub = channel.agent_stub(opened)
            kept = (
                copies.Copies(endpoint.name, stub, self._copies_bytes, self._observe)
                if self._copies_bytes > 0
                else None
            )
            agent = client.GrpcAgentClient(endpoint.name, stub, self._timeout, self._observe, expiry, kept)
            self._open[key] = _Open(endpoint.address, tls, opened, agent, kept)
            return agent

    def _retire(self, old: _Open) -> None:
        """Close old once the calls in flight on it had their time (renewed TLS must not cancel them)."""
        if old.copies is not None:
            # Its agent may be another one now: nothing it answered is served again.
            old.copies.close()
        self._retired = [(t, c) for t, c in self._retired if t.is_alive()]
        timer = threading.Timer(self._timeout + 1.0, old.channel.close)
        timer.daemon = True
        timer.start()
        self._retired.append((timer, old.channel))

    def close(self) -> None:
        with self._lock:
            for current in self._open.values():
                if current.copies is not None:
                    current.copies.close()
                current.channel.close()
            self._open.clear()
            for timer, old in self._retired:
                timer.cancel()
                old.close()
            self._retired.clear()


@dataclasses.dataclass(frozen=True)
class _Listed:
    at: float
    endpoints: tuple[AgentEndpoint, ...]
    deployed: frozenset[str]
    """Devices with agent pods, Ready or not."""


class AgentRegistry:
    """Agents from their pods, with a short cache; channels use mTLS and verify the agent's name."""

    def __init__(
        self,
        kube_client: kube.Kube,
        tls: TLSSource,
        timeout: float = client.DEFAULT_TIMEOUT,
        observe: client.Observer | None = None,
        cache_seconds: float = 2.0,
        copies_bytes: int = 0,
    ) -> None:
        self._client = kube_client
        self._tls = tls
        self._cache_seconds = cache_seconds
        self._channels = _Channels(timeout, observe, copies_bytes)
        # Guards _listed: sync workers, watch threads and API threads share one registry.
        self._lock = threading.Lock()
        self._listed: dict[tuple[str, str | None], _Listed] = {}

    def _list(self, namespace: str, device: str | None) -> _Listed:
        key = (namespace, device)
        with self._lock:
            cached = self._listed.get(key)
            if cached and time.monotonic() - cached.at < self._cache_seconds:
                return cached
        selector = AGENT_SELECTOR + (f",{constants.LABEL_DEVICE}={device}" if device else "")
        pods = self._client.list_objects("Pod", namespace, selector)
        found = sorted(
            (e for e in map(endpoint_of, pods) if e is not None and e.name), key=lambda e: (e.device, e.name)
        )
        deployed = frozenset(
            (pod["metadata"].get("labels") or {}).get(constants.LABEL_DEVICE, "") for pod in pods
        )
        listed = _Listed(time.monotonic(), tuple(found), deployed - {""})
        with self._lock:
            self._listed[key] = listed
        return listed

    def endpoints(self, namespace: str, device: str | None = None) -> list[AgentEndpoint]:
        return list(self._list(namespace, device).endpoints)

    def devices(self, namespace: str) -> list[str]:
        return sorted({e.device for e in self.endpoints(namespace)})

    def deployed(self, namespace: str) -> list[str]:
        return sorted(self._list(namespace, None).deployed)

    def client(self, endpoint: AgentEndpoint) -> client.AgentClient:
        tls = dataclasses.replace(self._tls.current(), server_name=endpoint.name)
        return self._channels.client(endpoint, tls)

    def invalidate(self) -> None:
        with self._lock:
            self._listed.clear()

    def close(self) -> None:
        self._channels.close()


class StaticDirectory:
    """A fixed list of agents (tests, benchmarks, a manager-less dev setup)."""

    def __init__(
        self,
        agents: Sequence[AgentEndpoint],
        tls: channel.ClientTLS | None = None,
        timeout: float = client.DEFAULT_TIMEOUT,
        observe: client.Observer | None = None,
        copies_bytes: int = 0,
    ) -> None:
        self._endpoints = sorted(agents, key=lambda e: (e.device, e.name))
        self._tls = tls
        self._channels = _Channels(timeout, observe, copies_bytes)

    @classmethod
    def from_json(cls, text: str, namespace: str, **options: Any) -> StaticDirectory:
        """Agents from ``{"<device>": [{"name": ..., "address": "host:port"}]}`` (plaintext gRPC)."""
        config: dict[str, list[dict[str, str]]] = json.loads(text)
        agents = [
            AgentEndpoint(device, namespace, m["name"], m.get("serial", ""), m.get("node", ""), m["address"])
            for device, members in config.items()
            for m in members
        ]
        return cls(agents, **options)

    def devices(self, namespace: str) -> list[str]:
        return sorted({e.device for e in self.endpoints(namespace)})

    def deployed(self, namespace: str) -> list[str]:
        return self.devices(namespace)

    def endpoints(self, namespace: str, device: str | None = None) -> list[AgentEndpoint]:
        return [
            e for e in self._endpoints if e.namespace == namespace and (device is None or e.device == device)
        ]

    def client(self, endpoint: AgentEndpoint) -> client.AgentClient:
        return self._channels.client(endpoint, self._tls)

    def invalidate(self) -> None:
        return

    def close(self) -> None:
        self._channels.close()
