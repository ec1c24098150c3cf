"""Operator settings, read once from flags (or HSM_MANAGER_* variables)."""

from __future__ import annotations

import dataclasses

from . import podextras


@dataclasses.dataclass(frozen=True)
class OperatorConfig:
    namespace: str
    """The operator's own namespace: CA, client certificate and MAC key Secrets live here."""
    agent_image: str
    """Image of agent pods (the runner on the devcluster maps its name to the hsm-agent command)."""
    discovery_image: str
    """Image of discovery pods."""
    workers: int = 4
    """Sync worker threads: gRPC and API calls block, so a few run side by side."""
    default_sync_interval: float = 300.0
    """Backstop period of an HSMSecret without syncInterval (seconds)."""
    pool_interval: float = 10.0
    """How often pools are re-aggregated even without pod events, so freshness expires on time."""
    call_timeout: float = 3.0
    """Deadline of one gRPC call to an agent during sync (seconds)."""
    agent_run_as_root: bool = False
    """Run agents as root (real USB readers with pcscd); SoftHSM2 needs no root."""
    agent_extras: podextras.PodExtras = dataclasses.field(default_factory=podextras.PodExtras)
    """Node paths and variables for agent pods (SoftHSM2 token stores, modules installed on the node)."""
    discovery_extras: podextras.PodExtras = dataclasses.field(default_factory=podextras.PodExtras)
    """Node paths (read-only) and variables for discovery pods (e.g. a umockdev testbed)."""
