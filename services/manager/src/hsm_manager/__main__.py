"""``hsm-manager``: the operator (``operator``) or the REST API (``api``)."""

from __future__ import annotations

import argparse
import sys

from hsm_common import constants, settings

ENV = "HSM_MANAGER"


def build_parser() -> argparse.ArgumentParser:
    """The manager command line; every flag can also come from an HSM_MANAGER_* variable."""
    parser = argparse.ArgumentParser(prog="hsm-manager", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    operator = commands.add_parser("operator", help="run the kopf operator")
    settings.add_flag(operator, ENV, "--namespace", default=constants.DEFAULT_NAMESPACE, help="own namespace")
    settings.add_flag(operator, ENV, "--log-level", default="info", help="debug, info, warning or error")
    api = commands.add_parser("api", help="run the REST API under gunicorn")
    settings.add_flag(api, ENV, "--listen", default=f"0.0.0.0:{constants.PORT_API}", help="API address")
    settings.add_flag(api, ENV, "--workers", type=int, default=2, help="gunicorn workers")
    return parser


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
