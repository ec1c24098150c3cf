"""``hsm-agent``: serve one PKCS#11 token over gRPC."""

from __future__ import annotations

import argparse
import sys

from hsm_common import constants, settings

ENV = "HSM_AGENT"


def build_parser() -> argparse.ArgumentParser:
    """The agent's command line; every flag can also come from an HSM_AGENT_* variable."""
    parser = argparse.ArgumentParser(prog="hsm-agent", description=__doc__)
    add = settings.add_flag
    add(parser, ENV, "--pkcs11-library", default="/usr/lib/softhsm/libsofthsm2.so", help="PKCS#11 module")
    add(parser, ENV, "--token-label", help="label of the token to serve")
    add(parser, ENV, "--slot-id", type=int, help="slot of the token to serve (instead of --token-label)")
    add(parser, ENV, "--pin-file", help="file holding the user PIN (a mounted Secret)", required=True)
    add(parser, ENV, "--listen", help="gRPC address HOST:PORT; default $POD_IP:9090")
    add(parser, ENV, "--health-listen", default=f"0.0.0.0:{constants.PORT_AGENT_HEALTH}", help="health address")
    add(parser, ENV, "--tls-cert", help="server certificate (PEM); enables TLS")
    add(parser, ENV, "--tls-key", help="server private key (PEM)")
    add(parser, ENV, "--tls-client-ca", help="CA for client certificates; makes them required")
    add(parser, ENV, "--max-object-size", type=int, default=65536, help="largest value stored in one object")
    add(parser, ENV, "--rescan-interval", type=settings.parse_duration, default=300.0, help="rescan period")
    add(parser, ENV, "--device-name", default="", help="name of this device (for logs and GetInfo)")
    add(parser, ENV, "--serial", help="refuse to serve unless the token has this serial number")
    add(parser, ENV, "--log-level", default="info", help="debug, info, warning or error")
    return parser


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
