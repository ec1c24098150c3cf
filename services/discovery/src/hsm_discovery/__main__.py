"""``hsm-discovery``: find USB HSMs on this node and report them in this pod's annotation."""

from __future__ import annotations

import argparse
import sys

from hsm_common import settings

ENV = "HSM_DISCOVERY"


def build_parser() -> argparse.ArgumentParser:
    """The discovery command line; every flag can also come from an HSM_DISCOVERY_* variable."""
    parser = argparse.ArgumentParser(prog="hsm-discovery", description=__doc__)
    add = settings.add_flag
    add(parser, ENV, "--rescan-interval", type=settings.parse_duration, default=30.0, help="full rescan period")
    add(parser, ENV, "--heartbeat-interval", type=settings.parse_duration, default=60.0, help="report heartbeat")
    add(parser, ENV, "--health-listen", default="0.0.0.0:8080", help="health and metrics address")
    add(parser, ENV, "--log-level", default="info", help="debug, info, warning or error")
    return parser


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
