"""``hsm-manager``: the operator (``operator``) or the REST API (``api``)."""

from __future__ import annotations

import argparse
import logging
import sys

from hsm_common import logs

from .api import config as api_config
from .operator import config as operator_config

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The manager command line; every flag can also come from an HSM_MANAGER_* variable."""
    parser = argparse.ArgumentParser(prog="hsm-manager", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    operator_config.add_flags(commands.add_parser("operator", help="run the kopf operator"))
    api_config.add_flags(commands.add_parser("api", help="run the REST API under gunicorn"))
    return parser


def _operator(cfg: operator_config.OperatorConfig) -> int:
    # Imported here: the API process has no use for kopf.
    from .operator import run

    logs.setup(cfg.log_level)
    # Debug only: paths and variable names are configuration, yet nobody needs them in every start-up log.
    log.debug(
        "pod extras",
        extra={
            "device_mounts": list(cfg.device_mounts),
            "device_env": [variable for variable, _ in cfg.device_env],
            "device_node_root": cfg.device_node_root,
            "device_plugin_dir": cfg.device_plugin_dir,
            "discovery_host_paths": list(cfg.discovery_extras.host_paths),
            "discovery_env": [variable for variable, _ in cfg.discovery_extras.env],
        },
    )
    return run.run(cfg)


def _api(cfg: api_config.ApiConfig) -> int:
    # Imported here: the operator process has no use for flask or gunicorn.
    from .api import server

    logs.setup(cfg.log_level)
    return server.serve(cfg)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "operator":
        try:
            cfg = operator_config.from_args(args)
        except ValueError as error:
            parser.error(str(error))
        return _operator(cfg)
    return _api(api_config.from_args(args))


if __name__ == "__main__":
    sys.exit(main())
