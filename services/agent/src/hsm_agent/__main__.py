"""``hsm-agent``: serve one PKCS#11 token over gRPC.

``hsm-agent selftest …`` and ``hsm-agent import-legacy …`` run the command-line tools instead (see
hsm_agent.tools); any other first argument is the agent's own flags.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sys
import threading
import types

from hsm_agent import agent, modules
from hsm_agent.store import budget, secret_store
from hsm_agent.tools import selftest
from hsm_agent.tools.legacy import cli as import_legacy
from hsm_common import constants, logs, settings
from hsm_metricsauth import server as metricsauth

ENV = "HSM_AGENT"
#: A record's header (path, writer, metadata) must fit in one object.
MIN_OBJECT_SIZE = 1024
log = logging.getLogger("hsm_agent")

_store_default = functools.partial(settings.default_of, secret_store.StoreConfig)


def build_parser() -> argparse.ArgumentParser:
    """The agent's command line; every flag can also come from an HSM_AGENT_* variable."""
    parser = argparse.ArgumentParser(prog="hsm-agent", description=__doc__)
    add = settings.add_flag
    add(parser, ENV, "--pkcs11-library", default="/usr/lib/softhsm/libsofthsm2.so", help="PKCS#11 module")
    add(parser, ENV, "--token-label", help="label of the token to serve")
    add(parser, ENV, "--slot-id", type=int, help="slot of the token to serve (instead of --token-label)")
    add(parser, ENV, "--pin-file", help="file holding the user PIN (a mounted Secret)", required=True)
    add(parser, ENV, "--listen", help="gRPC address HOST:PORT; default $POD_IP:9090")
    add(
        parser,
        ENV,
        "--health-listen",
        default=f"0.0.0.0:{constants.PORT_AGENT_HEALTH}",
        help="address of /healthz and /readyz (plain HTTP, for the kubelet's probes)",
    )
    metricsauth.add_flags(parser, ENV, f"0.0.0.0:{constants.PORT_METRICS}")
    add(parser, ENV, "--tls-cert", help="server certificate (PEM); enables TLS")
    add(parser, ENV, "--tls-key", help="server private key (PEM)")
    add(parser, ENV, "--tls-client-ca", help="CA for client certificates; makes them required")
    add(
        parser,
        ENV,
        "--max-objects",
        type=int,
        help=(
            "object budget of the token, all objects counted (default: "
            f"{budget.OPENSC_MAX_OBJECTS} for OpenSC, else {budget.DEFAULT_MAX_OBJECTS})"
        ),
    )
    add(
        parser,
        ENV,
        "--max-object-size",
        type=int,
        help=(
            "largest object written; bigger secrets are chunked (default: "
            f"{budget.OPENSC_MAX_OBJECT_SIZE} for OpenSC, else {budget.DEFAULT_MAX_OBJECT_SIZE})"
        ),
    )
    add(
        parser,
        ENV,
        "--rescan-interval",
        type=settings.parse_duration,
        default=_store_default("rescan_interval"),
        help="rescan period",
    )
    add(
        parser,
        ENV,
        "--probe-interval",
        type=settings.parse_duration,
        default=_store_default("probe_interval"),
        help="token probe period",
    )
    add(
        parser,
        ENV,
        "--tombstone-retention",
        type=settings.parse_duration,
        default=_store_default("tombstone_retention"),
        help="tombstone age",
    )
    add(
        parser,
        ENV,
        "--collect-idle",
        type=settings.parse_duration,
        default=_store_default("collect_idle"),
        help="idle time after the last write before superseded objects are destroyed in the background",
    )
    add(
        parser,
        ENV,
        "--collect-backlog",
        type=int,
        default=_store_default("collect_backlog"),
        help="superseded objects allowed to wait; past it every write destroys one itself",
    )
    add(
        parser,
        ENV,
        "--read-cache-bytes",
        type=int,
        default=_store_default("read_cache_bytes"),
        help="memory for secret values already read, so reading them again does not ask the token (0: none)",
    )
    add(
        parser,
        ENV,
        "--device-name",
        default=_store_default("device_name"),
        help="name of this device (for logs and GetInfo)",
    )
    add(
        parser,
        ENV,
        "--serial",
        help="the device's serial number: serve only the token with this serial; with this agent's own pcscd,"
        " which sees this device alone, serve the one token present (a card's serial is not its USB serial)",
    )
    add(
        parser, ENV, "--pcscd", default="auto", help="supervise pcscd: auto (OpenSC modules), always or never"
    )
    add(parser, ENV, "--log-level", default="info", help="debug, info, warning or error")
    return parser


def config_from(args: argparse.Namespace) -> agent.AgentConfig:
    """The agent configuration of parsed arguments; ValueError when they do not fit together."""
    if args.token_label is not None and args.slot_id is not None:
        raise ValueError("give exactly one of --token-label and --slot-id")
    if args.token_label is None and args.slot_id is None and not args.serial:
        # The serial alone picks the token when several devices sit behind one module.
        raise ValueError("give exactly one of --token-label and --slot-id, or --serial")
    if args.max_objects is not None and args.max_objects < budget.RESERVE + 1:
        raise ValueError(f"--max-objects must be at least {budget.RESERVE + 1}")
    if args.collect_backlog < 0:
        raise ValueError("--collect-backlog must not be negative")
    if args.read_cache_bytes < 0:
        raise ValueError("--read-cache-bytes must not be negative")
    if args.max_object_size is not None and args.max_object_size < MIN_OBJECT_SIZE:
        raise ValueError(f"--max-object-size must be at least {MIN_OBJECT_SIZE}")
    listen = args.listen or f"{os.environ.get('POD_IP', '0.0.0.0')}:{constants.PORT_AGENT_GRPC}"  # noqa: S104
    if args.pcscd not in ("auto", "always", "never"):
        raise ValueError("--pcscd must be auto, always or never")
    use_pcscd = args.pcscd == "always" or (args.pcscd == "auto" and modules.is_opensc(args.pkcs11_library))
    return agent.AgentConfig(
        store=secret_store.StoreConfig(
            library_path=args.pkcs11_library,
            pin_file=args.pin_file,
            token_label=args.token_label,
            slot_id=args.slot_id,
            # The pod's pcscd reaches only the device handed to it, and OpenSC takes a token's serial from the
            # card, never from USB: there, the one token present is the device's.
            serial=None if use_pcscd else args.serial,
            max_objects=args.max_objects,
            max_object_size=args.max_object_size,
            rescan_interval=args.rescan_interval,
            probe_interval=args.probe_interval,
            tombstone_retention=args.tombstone_retention,
            collect_idle=args.collect_idle,
            collect_backlog=args.collect_backlog,
            read_cache_bytes=args.read_cache_bytes,
            device_name=args.device_name,
        ),
        listen=listen,
        health_listen=args.health_listen,
        metrics=metricsauth.from_flags(args),
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
        pcscd=use_pcscd,
    )


#: Subcommands by their first argument; the agent itself has none, so its flags are never mistaken for one.
TOOLS = {"selftest": selftest.main, "import-legacy": import_legacy.main}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in TOOLS:
        return TOOLS[argv[0]](argv[1:])
    return serve(argv)


def serve(argv: list[str]) -> int:
    """Serve the token until SIGTERM or SIGINT."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.setup(args.log_level)
    try:
        config = config_from(args)
    except ValueError as error:
        parser.error(str(error))
    stop = threading.Event()

    def on_signal(signum: int, frame: types.FrameType | None) -> None:
        log.info("signal received", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        service = agent.Agent(config)
    except metricsauth.SetupError as error:
        log.error("the agent cannot serve its metrics", extra={"reason": str(error)})
        return 2
    service.start()
    stop.wait()
    service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
