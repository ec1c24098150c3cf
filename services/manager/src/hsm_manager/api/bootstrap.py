"""Production wiring: Kubernetes reviews, PIN Secrets, agents from the operator registry (or a static list).

Settings come from HSM_MANAGER_* variables (the ``hsm-manager api`` flags export them for the workers).
"""

from __future__ import annotations

import json
import os
from typing import Any

from hsm_common import constants
from hsm_manager import kube as manager_kube
from hsm_manager.agents import registry
from hsmproto.v1 import hsm_pb2_grpc

from . import agents, app, auth, errors, kube


class RegistryProvider:
    """The operator's agent registry seen as a Provider: Ready agent pods of the device namespace."""

    def __init__(self, found: registry.AgentRegistry, namespace: str) -> None:
        self._registry = found
        self._namespace = namespace
        self._endpoints: dict[tuple[str, str], registry.AgentEndpoint] = {}

    def devices(self) -> list[str]:
        return self._registry.devices(self._namespace)

    def group(self, device: str) -> agents.Group:
        endpoints = self._registry.endpoints(self._namespace, device)
        members = []
        for endpoint in endpoints:
            self._endpoints[(device, endpoint.name)] = endpoint
            members.append(agents.Member(endpoint.name, endpoint.address, endpoint.serial, endpoint.node))
        if not members and device not in self._registry.devices(self._namespace):
            raise errors.DeviceNotFound(f"HSMDevice {device!r} has no ready agent", {"field": "device"})
        return agents.Group(device, self._namespace, tuple(members))

    def stub(self, member: agents.Member) -> hsm_pb2_grpc.HSMAgentStub:
        endpoint = next(e for (_, name), e in self._endpoints.items() if name == member.name)
        return self._registry.stub(endpoint)


def _static(text: str, namespace: str) -> agents.StaticProvider:
    """Agents from JSON ``{"<device>": [{"name": ..., "address": "host:port"}]}`` (plaintext gRPC)."""
    config: dict[str, list[dict[str, Any]]] = json.loads(text)
    groups = {
        device: [agents.Member(m["name"], m["address"]) for m in members]
        for device, members in config.items()
    }
    return agents.StaticProvider(groups, namespace)


def production_app() -> Any:
    """The API app as deployed: TokenReview/SubjectAccessReview, the registry's agents, PIN Secrets."""
    kubeconfig = os.environ.get("HSM_MANAGER_KUBECONFIG") or None
    namespace = os.environ.get("HSM_MANAGER_DEVICE_NAMESPACE") or os.environ.get(
        "POD_NAMESPACE", constants.DEFAULT_NAMESPACE
    )
    client = kube.load_client(kubeconfig)
    reviews = kube.Kube(client)
    static = os.environ.get("HSM_MANAGER_STATIC_AGENTS")
    provider: agents.Provider
    if static:
        provider = _static(static, namespace)
    else:
        operator_kube = manager_kube.Kube(client)
        provider = RegistryProvider(
            registry.AgentRegistry(operator_kube, registry.SecretTLS(operator_kube, namespace)), namespace
        )
    deps = app.Deps(
        guard=auth.Guard(reviews, reviews),
        provider=provider,
        pins=reviews,
        device_namespace=namespace,
        mirror_interval=float(os.environ.get("HSM_MANAGER_MIRROR_INTERVAL", "30")),
        mirror_lock=os.environ.get("HSM_MANAGER_MIRROR_LOCK", ""),
    )
    return app.create_app(deps)
