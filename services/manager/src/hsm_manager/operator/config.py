"""The operator process's settings: one OperatorConfig, built once from flags (or HSM_MANAGER_* variables)."""

from __future__ import annotations

import argparse
import dataclasses
import functools

from hsm_common import constants, settings
from hsm_manager import flags
from hsm_manager.decide import agentspec, discoveryspec

from . import podextras


@dataclasses.dataclass(frozen=True)
class OperatorConfig:
    namespace: str = constants.DEFAULT_NAMESPACE
    """The operator's own namespace: CA, client certificate and MAC key Secrets live here."""
    agent_image: str = "hsm-agent:latest"
    """Image of agent pods (the runner on the devcluster maps its name to the hsm-agent command)."""
    discovery_image: str = "hsm-discovery:latest"
    """Image of discovery pods."""
    workers: int = 4
    """Sync worker threads: gRPC and API calls block, so a few run side by side."""
    default_sync_interval: float = 300.0
    """Backstop period of an HSMSecret without syncInterval (seconds)."""
    call_timeout: float = 3.0
    """Deadline of one gRPC call to an agent during sync (seconds)."""
    mirror_interval: float = 30.0
    """Period of the mirror repair of every HSMDevice's devices (seconds); 0 turns it off."""
    agent_run_as_root: bool = False
    """Run agents as root (real USB readers with pcscd); SoftHSM2 needs no root."""
    agent_extras: podextras.PodExtras = dataclasses.field(default_factory=podextras.PodExtras)
    """Node paths and variables for agent pods (SoftHSM2 token stores, modules installed on the node)."""
    discovery_extras: podextras.PodExtras = dataclasses.field(default_factory=podextras.PodExtras)
    """Node paths (read-only) and variables for discovery pods (e.g. a umockdev testbed)."""
    metrics_port: int = constants.PORT_METRICS
    """Port of the Prometheus endpoint."""
    health_listen: str = f"0.0.0.0:{constants.PORT_OPERATOR_HEALTH}"
    """Address of kopf's /healthz (host:port)."""
    log_level: str = "info"
    """debug, info, warning or error."""


_default = functools.partial(settings.default_of, OperatorConfig)


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The operator's flags, with the defaults of OperatorConfig."""
    add = functools.partial(flags.add, parser)
    add("--namespace", default=_default("namespace"), help="own namespace")
    add("--log-level", default=_default("log_level"), help="debug, info, warning or error")
    add("--agent-image", default=_default("agent_image"), help="image of agent pods")
    add("--discovery-image", default=_default("discovery_image"), help="image of discovery pods")
    add("--workers", type=int, default=_default("workers"), help="sync worker threads")
    add(
        "--default-sync-interval",
        type=settings.parse_duration,
        default=_default("default_sync_interval"),
        help="backstop period of HSMSecrets without syncInterval",
    )
    add(
        "--call-timeout",
        type=settings.parse_duration,
        default=_default("call_timeout"),
        help="deadline of one call to an agent",
    )
    add(
        "--mirror-interval",
        type=settings.parse_duration,
        default=_default("mirror_interval"),
        help="period of the mirror repair (0: off)",
    )
    add("--metrics-port", type=int, default=_default("metrics_port"), help="Prometheus port")
    add("--health-listen", default=_default("health_listen"), help="address of /healthz")
    add(
        "--agent-run-as-root",
        type=flags.boolean,
        default=_default("agent_run_as_root"),
        help="run agents as root",
    )
    # Text forms of PodExtras; from_args parses and checks them.
    for pods, access in (("agent", "read-write"), ("discovery", "read-only")):
        add(
            f"--{pods}-host-paths",
            default="",
            help=f"comma-separated absolute node paths mounted {access} at the same path in {pods} pods",
        )
        add(f"--{pods}-env", default="", help=f"comma-separated NAME=VALUE for {pods} pods")


def from_args(args: argparse.Namespace) -> OperatorConfig:
    """The OperatorConfig of parsed flags; ValueError with a message for the user when one is invalid."""
    agent_extras = podextras.parse(
        args.agent_host_paths,
        args.agent_env,
        names=("--agent-host-paths", "--agent-env"),
        taken_paths=agentspec.MOUNT_PATHS,
    )
    discovery_extras = podextras.parse(
        args.discovery_host_paths,
        args.discovery_env,
        names=("--discovery-host-paths", "--discovery-env"),
        taken_paths=discoveryspec.MOUNT_PATHS,
        read_only_default=True,
    )
    return OperatorConfig(
        namespace=args.namespace,
        agent_image=args.agent_image,
        discovery_image=args.discovery_image,
        workers=args.workers,
        default_sync_interval=args.default_sync_interval,
        call_timeout=args.call_timeout,
        mirror_interval=args.mirror_interval,
        agent_run_as_root=args.agent_run_as_root,
        agent_extras=agent_extras,
        discovery_extras=discovery_extras,
        metrics_port=args.metrics_port,
        health_listen=args.health_listen,
        log_level=args.log_level,
    )
