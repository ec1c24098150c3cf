"""``hsm-manager``: the operator (``operator``) or the REST API (``api``)."""

from __future__ import annotations

import argparse
import logging
import sys

from hsm_common import constants, logs, settings

from .decide import agentspec, discoveryspec
from .operator import config, podextras

ENV = "HSM_MANAGER"

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The manager command line; every flag can also come from an HSM_MANAGER_* variable."""
    parser = argparse.ArgumentParser(prog="hsm-manager", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    operator = commands.add_parser("operator", help="run the kopf operator")
    add = settings.add_flag
    add(operator, ENV, "--namespace", default=constants.DEFAULT_NAMESPACE, help="own namespace")
    add(operator, ENV, "--log-level", default="info", help="debug, info, warning or error")
    add(operator, ENV, "--agent-image", default="hsm-agent:latest", help="image of agent pods")
    add(operator, ENV, "--discovery-image", default="hsm-discovery:latest", help="image of discovery pods")
    add(operator, ENV, "--workers", type=int, default=4, help="sync worker threads")
    add(
        operator,
        ENV,
        "--default-sync-interval",
        type=settings.parse_duration,
        default=300.0,
        help="backstop period of HSMSecrets without syncInterval",
    )
    add(operator, ENV, "--metrics-port", type=int, default=constants.PORT_METRICS, help="Prometheus port")
    add(
        operator,
        ENV,
        "--health-listen",
        default=f"0.0.0.0:{constants.PORT_OPERATOR_HEALTH}",
        help="address of /healthz",
    )
    add(operator, ENV, "--agent-run-as-root", type=_boolean, default=False, help="run agents as root")
    for pods, access in (("agent", "read-write"), ("discovery", "read-only")):
        add(
            operator,
            ENV,
            f"--{pods}-host-paths",
            default="",
            help=f"comma-separated absolute node paths mounted {access} at the same path in {pods} pods",
        )
        add(operator, ENV, f"--{pods}-env", default="", help=f"comma-separated NAME=VALUE for {pods} pods")
    api = commands.add_parser("api", help="run the REST API under gunicorn")
    settings.add_flag(api, ENV, "--listen", default=f"0.0.0.0:{constants.PORT_API}", help="API address")
    settings.add_flag(api, ENV, "--workers", type=int, default=2, help="gunicorn workers")
    add(api, ENV, "--threads", type=int, default=4, help="threads per gunicorn worker")
    add(api, ENV, "--metrics-listen", default=f"0.0.0.0:{constants.PORT_METRICS}", help="Prometheus address")
    add(api, ENV, "--device-namespace", default="", help="namespace of the HSMDevices (default: own)")
    add(api, ENV, "--kubeconfig", default="", help="kubeconfig (default: in-cluster ServiceAccount)")
    add(
        api, ENV, "--mirror-interval", type=settings.parse_duration, default=30.0, help="mirror repair period"
    )
    add(
        api, ENV, "--static-agents", default="", help='JSON {"device": [{"name", "address"}]} instead of pods'
    )
    add(api, ENV, "--log-level", default="info", help="debug, info, warning or error")
    return parser


def _boolean(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def operator_config(args: argparse.Namespace) -> config.OperatorConfig:
    """The operator settings of parsed arguments; ValueError with a message for the user if one is invalid."""
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
    return config.OperatorConfig(
        namespace=args.namespace,
        agent_image=args.agent_image,
        discovery_image=args.discovery_image,
        workers=args.workers,
        default_sync_interval=args.default_sync_interval,
        agent_run_as_root=args.agent_run_as_root,
        agent_extras=agent_extras,
        discovery_extras=discovery_extras,
    )


def _operator(args: argparse.Namespace, cfg: config.OperatorConfig) -> int:
    # Imported here: the API process has no use for kopf.
    from .operator import run

    logs.setup(args.log_level)
    # Debug only: paths and variable names are configuration, yet nobody needs them in every start-up log.
    log.debug(
        "pod extras",
        extra={
            "agent_host_paths": list(cfg.agent_extras.host_paths),
            "agent_env": [variable for variable, _ in cfg.agent_extras.env],
            "discovery_host_paths": list(cfg.discovery_extras.host_paths),
            "discovery_env": [variable for variable, _ in cfg.discovery_extras.env],
        },
    )
    return run.run(cfg, args.metrics_port, args.health_listen)


def _api(args: argparse.Namespace) -> int:
    # Imported here: the operator process has no use for flask or gunicorn.
    from .api import server

    logs.setup(args.log_level)
    return server.run_command(args)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "operator":
        try:
            cfg = operator_config(args)
        except ValueError as error:
            parser.error(str(error))
        return _operator(args, cfg)
    if args.command == "api":
        return _api(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
