"""``hsm-discovery``: find USB HSMs on this node and report them in this pod's annotation."""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import signal
import sys
import threading

from hsm_common import constants, logs, settings
from hsm_metricsauth import server as metricsauth

from . import bootstrap, errors
from .plugin import config as plugin_config

ENV = "HSM_DISCOVERY"

log = logging.getLogger("hsm_discovery")


def _labels(text: str) -> dict[str, str]:
    """``k=v,k2=v2`` as a dict."""
    out = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"invalid label {item!r}: use key=value")
        out[key] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    """The discovery command line; every flag can also come from an HSM_DISCOVERY_* variable."""
    parser = argparse.ArgumentParser(prog="hsm-discovery", description=__doc__)
    add = settings.add_flag
    add(
        parser,
        ENV,
        "--rescan-interval",
        type=settings.parse_duration,
        default=30.0,
        help="full rescan period",
    )
    add(
        parser,
        ENV,
        "--heartbeat-interval",
        type=settings.parse_duration,
        default=60.0,
        help="report heartbeat",
    )
    add(
        parser,
        ENV,
        "--health-listen",
        default=f"0.0.0.0:{constants.PORT_DISCOVERY_HEALTH}",
        help="address of /healthz and /readyz (plain HTTP, for the kubelet's probes)",
    )
    metricsauth.add_flags(parser, ENV, f"0.0.0.0:{constants.PORT_METRICS}")
    add(parser, ENV, "--log-level", default="info", help="debug, info, warning or error")
    add(parser, ENV, "--debounce", type=settings.parse_duration, default=0.1, help="udev event debounce")
    add(
        parser,
        ENV,
        "--resync-interval",
        type=settings.parse_duration,
        default=300.0,
        help="HSMDevice relist period",
    )
    add(
        parser,
        ENV,
        "--forget-after",
        type=settings.parse_duration,
        default=86400.0,
        help="how long a removed device stays in the report",
    )
    add(parser, ENV, "--device-selector", default="", help="label selector for the HSMDevices to watch")
    add(
        parser,
        ENV,
        "--hsm-device",
        default="",
        help="report on and serve the device plugin of this HSMDevice only (set per DaemonSet)",
    )
    add(parser, ENV, "--ccid-plist", default="", help="libccid Info.plist (default: the usual system paths)")
    add(
        parser,
        ENV,
        "--report-file",
        default="",
        help="write the report to this file instead of the pod annotation (local runs)",
    )
    add(
        parser,
        ENV,
        "--devices-file",
        default="",
        help="read HSMDevice objects from this JSON file instead of the API server (local runs)",
    )
    add(
        parser,
        ENV,
        "--node-labels",
        type=_labels,
        default={},
        help="this node's labels as k=v,... (with --devices-file)",
    )
    add(
        parser,
        ENV,
        "--device-plugin-dir",
        default=constants.DEVICE_PLUGIN_DIR,
        help="the kubelet's device-plugin directory; empty serves no device plugin",
    )
    add(
        parser,
        ENV,
        "--device-node-root",
        type=plugin_config.absolute_path,
        default="/",
        help="where the container runtime finds the node's /dev (prefix of allocated device nodes)",
    )
    add(
        parser,
        ENV,
        "--device-mounts",
        type=plugin_config.parse_mounts,
        default=(),
        help="host paths /a,/b every allocation mounts read-write at the same path",
    )
    add(
        parser,
        ENV,
        "--device-env",
        type=plugin_config.parse_env,
        default={},
        help="variables NAME=VALUE,... every allocation sets",
    )
    parser.add_argument("--once", action="store_true", help="scan and report once, then exit")
    return parser


def _device_plugin(args: argparse.Namespace) -> plugin_config.Config | None:
    if not args.device_plugin_dir:
        return None
    return plugin_config.Config(
        plugin_dir=pathlib.Path(args.device_plugin_dir),
        node_root=args.device_node_root,
        mounts=args.device_mounts,
        env=args.device_env,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup(args.log_level)
    config = bootstrap.Config(
        node_name=os.environ.get("NODE_NAME", ""),
        pod_name=os.environ.get("POD_NAME", ""),
        pod_namespace=os.environ.get("POD_NAMESPACE", ""),
        rescan_interval=args.rescan_interval,
        heartbeat_interval=args.heartbeat_interval,
        health_listen=args.health_listen,
        metrics=metricsauth.from_flags(args),
        debounce=args.debounce,
        resync_interval=args.resync_interval,
        forget_after=args.forget_after,
        device_selector=args.device_selector,
        hsm_device=args.hsm_device,
        ccid_plist=args.ccid_plist,
        report_file=args.report_file,
        devices_file=args.devices_file,
        node_labels=args.node_labels,
        device_plugin=_device_plugin(args),
    )
    try:
        if args.once:
            return 0 if bootstrap.run_once(config) else 1
        stop = threading.Event()
        app = bootstrap.build(config, stop)
    except errors.DiscoveryError as err:
        log.error("startup_failed", extra={"error": str(err)})
        return 2

    def _stop(signum: int, _frame: object) -> None:
        log.info("stopping", extra={"signal": signum})
        stop.set()
        app.service.wake()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
