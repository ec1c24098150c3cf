"""The API process's settings: one ApiConfig, built once from flags (or HSM_MANAGER_* variables).

gunicorn's master builds it and hands it to the app factory; forked workers inherit it, so nothing is
passed through the environment.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os

from hsm_common import constants, settings
from hsm_manager import flags
from hsm_manager.gateway import client

#: Where the API's pod mounts the Secret of its serving certificate (tls.crt, tls.key).
TLS_DIR = "/etc/hsm-api/tls"


@dataclasses.dataclass(frozen=True)
class ApiConfig:
    listen: str = f"0.0.0.0:{constants.PORT_API}"
    """Address the API serves on (host:port)."""
    workers: int = 2
    """gunicorn worker processes."""
    threads: int = 4
    """Threads per worker: an agent call that waits must not stall the worker's other requests."""
    metrics_listen: str = f"0.0.0.0:{constants.PORT_METRICS}"
    """host:port of the Prometheus endpoint (HTTPS, every worker's metrics summed); empty disables it."""
    metrics_cert_dir: str = ""
    """Directory of the metrics endpoint's tls.crt and tls.key (reloaded on change, served once present);
    empty, or until they are: self-signed."""
    device_namespace: str = constants.DEFAULT_NAMESPACE
    """Namespace of the HSMDevices, where device-wide routes are authorized (flag default: the pod's own)."""
    kubeconfig: str = ""
    """Kubeconfig file; empty: the in-cluster ServiceAccount, else the default kubeconfig."""
    static_agents: str = ""
    """JSON ``{"<device>": [{"name": ..., "address": "host:port"}]}``: plaintext agents, not agent pods."""
    log_level: str = "info"
    """debug, info, warning or error."""
    call_timeout: float = client.DEFAULT_TIMEOUT
    """Deadline of one gRPC call to an agent (seconds)."""
    tls_cert_file: str = f"{TLS_DIR}/tls.crt"
    """The serving certificate (PEM, chain included), read again when it changes."""
    tls_key_file: str = f"{TLS_DIR}/tls.key"
    """The serving certificate's private key (PEM)."""
    insecure_plain_http: bool = False
    """Serve plain HTTP instead of HTTPS: for local debugging only (tokens and secrets travel in clear)."""
    read_copies_mib: int = 16
    """MiB of secrets and list pages each worker keeps per agent, answered again without asking the agent
    while the agent guarantees they are current; 0 keeps none."""


_default = functools.partial(settings.default_of, ApiConfig)


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The API's flags, with the defaults of ApiConfig."""
    add = functools.partial(flags.add, parser)
    add("--listen", default=_default("listen"), help="API address")
    add("--workers", type=int, default=_default("workers"), help="gunicorn workers")
    add("--threads", type=int, default=_default("threads"), help="threads per gunicorn worker")
    add("--metrics-listen", default=_default("metrics_listen"), help="Prometheus address (empty: none)")
    add(
        "--metrics-cert-dir",
        default=_default("metrics_cert_dir"),
        help="directory of the metrics certificate's tls.crt and tls.key, served once present "
        "(until then, and when empty: self-signed)",
    )
    add(
        "--device-namespace",
        # The pod's own namespace, from the downward API, when it runs in one.
        default=os.environ.get("POD_NAMESPACE") or _default("device_namespace"),
        help="namespace of the HSMDevices",
    )
    add("--kubeconfig", default=_default("kubeconfig"), help="kubeconfig (default: in-cluster, else ~/.kube)")
    add(
        "--static-agents",
        default=_default("static_agents"),
        help='JSON {"device": [{"name", "address"}]} of plaintext agents instead of agent pods',
    )
    add("--log-level", default=_default("log_level"), help="debug, info, warning or error")
    add(
        "--call-timeout",
        type=settings.parse_duration,
        default=_default("call_timeout"),
        help="deadline of one call to an agent",
    )
    add(
        "--tls-cert-file",
        default=_default("tls_cert_file"),
        help="serving certificate (PEM; reloaded on change)",
    )
    add("--tls-key-file", default=_default("tls_key_file"), help="serving certificate's private key (PEM)")
    add(
        "--insecure-plain-http",
        type=flags.boolean,
        default=_default("insecure_plain_http"),
        help=(
            "true: serve plain HTTP, not HTTPS. For local debugging only: bearer tokens and secret values "
            "cross the network unencrypted"
        ),
    )

    add(
        "--read-copies-mib",
        type=_not_negative,
        default=_default("read_copies_mib"),
        help="MiB of secrets and list pages each worker keeps per agent and serves again while the agent "
        "guarantees they are current (every write waits until no worker holds the value it replaces); "
        "0: none, every read asks the agent",
    )


def _not_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def from_args(args: argparse.Namespace) -> ApiConfig:
    """The ApiConfig of parsed flags."""
    return ApiConfig(
        listen=args.listen,
        workers=args.workers,
        threads=args.threads,
        metrics_listen=args.metrics_listen,
        metrics_cert_dir=args.metrics_cert_dir,
        device_namespace=args.device_namespace,
        kubeconfig=args.kubeconfig,
        static_agents=args.static_agents,
        log_level=args.log_level,
        call_timeout=args.call_timeout,
        tls_cert_file=args.tls_cert_file,
        tls_key_file=args.tls_key_file,
        insecure_plain_http=args.insecure_plain_http,
        read_copies_mib=args.read_copies_mib,
    )
