"""The operator process's settings: one OperatorConfig, built once from flags (or HSM_MANAGER_* variables)."""

from __future__ import annotations

import argparse
import dataclasses
import functools

from hsm_common import constants, settings
from hsm_manager import flags
from hsm_manager.decide import agentspec, discoveryspec
from hsm_manager.gateway import pki

from . import podextras


@dataclasses.dataclass(frozen=True)
class OperatorConfig:
    namespace: str = constants.DEFAULT_NAMESPACE
    """The operator's own namespace: CA, client certificate and MAC key Secrets live here."""
    agent_image: str = "hsm-agent:latest"
    """Image of agent pods (the runner on the devcluster maps its name to the hsm-agent command)."""
    discovery_image: str = "hsm-discovery:latest"
    """Image of discovery pods."""
    workers: int = 16
    """Sync worker threads. A pass spends most of its time waiting (two agent calls, two API writes), so
    enough of them must be in flight to keep the API server busy at a cold start (bench/sync.py)."""
    default_sync_interval: float = 300.0
    """Backstop period of an HSMSecret without syncInterval (seconds)."""
    call_timeout: float = 3.0
    """Deadline of one gRPC call to an agent during sync (seconds)."""
    mirror_interval: float = 30.0
    """Period of the mirror repair of every HSMDevice's devices (seconds); 0 turns it off."""
    ca_renew_fraction: float = 1 / 3
    """The manager's CA is rotated once less than this share of its lifetime is left (it lives ten years)."""
    ca_rotation_interval: float = 30.0
    """Period of the CA rotation's rounds (seconds): push the phase out, observe, step; 0 turns it off."""
    agent_run_as_root: bool = False
    """Run agents as root, still without capabilities: real USB devices, whose device nodes are root's
    (pcscd opens them read-write). SoftHSM2 needs no root."""
    device_mounts: tuple[str, ...] = ()
    """Node paths the device plugin mounts read-write, at the same path, into each agent's container with
    its device (SoftHSM2 token stores, vendor modules installed on the node)."""
    device_env: tuple[tuple[str, str], ...] = ()
    """(NAME, VALUE) pairs the device plugin sets in each agent's container with its device."""
    device_node_root: str = "/"
    """Where the nodes' device nodes are as the kubelet sees them (a tree of stand-ins on a test cluster)."""
    device_plugin_dir: str = constants.DEVICE_PLUGIN_DIR
    """The kubelet's device-plugin directory on the nodes: ``<kubelet --root-dir>/device-plugins``."""
    discovery_extras: podextras.PodExtras = dataclasses.field(default_factory=podextras.PodExtras)
    """Node paths (read-only) and variables for discovery pods (e.g. a umockdev testbed)."""
    metrics_port: int = constants.PORT_METRICS
    """Port of the Prometheus endpoint (HTTPS, for callers allowed to get /metrics)."""
    metrics_cert_dir: str = ""
    """Directory of the metrics endpoint's tls.crt and tls.key (reloaded on change, served once present);
    empty, or until they are: self-signed."""
    health_listen: str = f"0.0.0.0:{constants.PORT_OPERATOR_HEALTH}"
    """Address of kopf's /healthz (host:port)."""
    log_level: str = "info"
    """debug, info, warning or error."""
    api_service: str = "hsm-api"
    """The REST API's Service: its DNS names are the SANs of the API's serving certificate."""
    api_tls_secret: str = pki.API_TLS_SECRET
    """The Secret (kubernetes.io/tls, operator namespace) the API pod mounts its serving certificate from."""
    api_tls_issue: bool = True
    """Issue and renew that certificate from the manager's CA; false: the user supplies the Secret (e.g.
    cert-manager), and the operator only publishes its ``ca.crt`` for clients."""


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
    add(
        "--ca-renew-fraction",
        type=float,
        default=_default("ca_renew_fraction"),
        help="rotate the manager's CA once less than this share of its lifetime is left",
    )
    add(
        "--ca-rotation-interval",
        type=settings.parse_duration,
        default=_default("ca_rotation_interval"),
        help="period of the CA rotation's rounds (0: off)",
    )
    add("--metrics-port", type=int, default=_default("metrics_port"), help="Prometheus port")
    add(
        "--metrics-cert-dir",
        default=_default("metrics_cert_dir"),
        help="directory of the metrics certificate's tls.crt and tls.key, served once present "
        "(until then, and when empty: self-signed)",
    )
    add("--health-listen", default=_default("health_listen"), help="address of /healthz")
    add(
        "--agent-run-as-root",
        type=flags.boolean,
        default=_default("agent_run_as_root"),
        help="run agents as root, without capabilities (USB device nodes are root's; SoftHSM2 needs none)",
    )
    # Text forms of paths and variables; from_args parses and checks them.
    add(
        "--device-mounts",
        default="",
        help="comma-separated node paths the device plugin mounts read-write into agent containers",
    )
    add("--device-env", default="", help="comma-separated NAME=VALUE the device plugin sets in agents")
    add(
        "--device-node-root",
        default=_default("device_node_root"),
        help="where the nodes' device nodes are as the kubelet sees them",
    )
    add(
        "--device-plugin-dir",
        default=_default("device_plugin_dir"),
        help="the kubelet's device-plugin directory on the nodes",
    )
    add(
        "--discovery-host-paths",
        default="",
        help="comma-separated node paths mounted (read-only unless PATH:rw) in discovery pods",
    )
    add("--discovery-env", default="", help="comma-separated NAME=VALUE for discovery pods")
    add(
        "--api-service",
        default=_default("api_service"),
        help="the REST API's Service (its certificate's names)",
    )
    add(
        "--api-tls-secret", default=_default("api_tls_secret"), help="Secret of the API's serving certificate"
    )
    add(
        "--api-tls-issue",
        type=flags.boolean,
        default=_default("api_tls_issue"),
        help="issue the API's certificate from the manager's CA (false: supplied, e.g. by cert-manager)",
    )


def from_args(args: argparse.Namespace) -> OperatorConfig:
    """The OperatorConfig of parsed flags; ValueError with a message for the user when one is invalid."""
    discovery_extras = podextras.parse(
        args.discovery_host_paths,
        args.discovery_env,
        names=("--discovery-host-paths", "--discovery-env"),
        taken_paths=discoveryspec.MOUNT_PATHS,
        reserved_env=discoveryspec.OWN_ENV,
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
        ca_renew_fraction=args.ca_renew_fraction,
        ca_rotation_interval=args.ca_rotation_interval,
        agent_run_as_root=args.agent_run_as_root,
        device_mounts=podextras.mounts(args.device_mounts, "--device-mounts", agentspec.MOUNT_PATHS),
        device_env=podextras.variables(args.device_env, "--device-env", agentspec.OWN_ENV),
        device_node_root=podextras.node_path(args.device_node_root, "--device-node-root"),
        device_plugin_dir=podextras.node_path(args.device_plugin_dir, "--device-plugin-dir"),
        discovery_extras=discovery_extras,
        metrics_port=args.metrics_port,
        metrics_cert_dir=args.metrics_cert_dir,
        health_listen=args.health_listen,
        log_level=args.log_level,
        api_service=args.api_service,
        api_tls_secret=args.api_tls_secret,
        api_tls_issue=args.api_tls_issue,
    )
