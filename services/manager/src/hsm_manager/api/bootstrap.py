"""Production wiring: Kubernetes reviews and PIN Secrets, agents from the operator registry (or a list)."""

from __future__ import annotations

from typing import Any

from hsm_manager import kube
from hsm_manager.gateway import endpoints
from hsm_manager.mirroring import service

from . import app, auth, config, metrics


def production_app(cfg: config.ApiConfig) -> Any:
    """The API app as deployed: TokenReview/SubjectAccessReview, the registry's agents, PIN Secrets."""
    namespace = cfg.device_namespace
    client = kube.Kube.connect(cfg.kubeconfig)
    reviewer = auth.KubeReviewer(client)
    directory: endpoints.Directory
    copies_bytes = cfg.read_copies_mib * 2**20
    if cfg.static_agents:
        directory = endpoints.StaticDirectory.from_json(
            cfg.static_agents,
            namespace,
            timeout=cfg.call_timeout,
            observe=metrics.observe_agent_call,
            copies_bytes=copies_bytes,
        )
    else:
        directory = endpoints.AgentRegistry(
            client,
            endpoints.SecretTLS(client, namespace),
            timeout=cfg.call_timeout,
            observe=metrics.observe_agent_call,
            copies_bytes=copies_bytes,
        )
    deps = app.Deps(
        guard=auth.Guard(reviewer, reviewer),
        mirror=service.Mirror(directory, namespace),
        pins=client,
        device_namespace=namespace,
        pools=client,
    )
    return app.create_app(deps)
