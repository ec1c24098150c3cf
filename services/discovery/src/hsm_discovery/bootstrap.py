"""Wires the real adapters (libudev, Kubernetes or files, HTTP) into the service; the one place that does."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import logging
import pathlib
import threading
import time
from collections.abc import Callable

from hsm_metricsauth import server as metricsauth

from . import ccid, errors, health, kube, metrics, monitor, reporter, scan, service, sink, sources, usb
from .plugin import config as plugin_config
from .plugin import supervisor

log = logging.getLogger(__name__)

ONCE_TIMEOUT = 30.0
"""Seconds --once waits for the HSMDevices before giving up."""


@dataclasses.dataclass(frozen=True)
class Config:
    node_name: str
    """From the downward API (NODE_NAME)."""
    pod_name: str
    """From the downward API (POD_NAME): the pod whose annotation carries the report."""
    pod_namespace: str
    """From the downward API (POD_NAMESPACE): where the HSMDevices are watched."""
    rescan_interval: float
    heartbeat_interval: float
    health_listen: str
    debounce: float
    resync_interval: float
    forget_after: float
    device_selector: str
    hsm_device: str
    """Report on and serve this HSMDevice alone; empty for every one the selector picks."""
    ccid_plist: str
    """An Info.plist to use instead of the system's; empty for the usual paths."""
    report_file: str
    """Write reports here instead of the pod annotation."""
    devices_file: str
    """Read HSMDevices from here instead of the API server."""
    node_labels: dict[str, str]
    """This node's labels when devices_file is used."""
    device_plugin: plugin_config.Config | None = None
    """The kubelet device plugins' settings; None serves no plugin."""
    metrics: metricsauth.Settings | None = None
    """The HTTPS metrics endpoint; None serves none."""


@dataclasses.dataclass
class App:
    service: service.Service
    source: sources.Source
    watcher: monitor.Monitor
    probes: health.Server
    stop: threading.Event
    plugins: supervisor.Supervisor | None
    metrics: metricsauth.MetricsServer | None

    def run(self) -> None:
        """Run until stop is set, then stop every thread this app started."""
        self.source.start()
        self.watcher.start()
        if self.plugins is not None:
            self.plugins.start()
        self.probes.start()
        if self.metrics is not None:
            self.metrics.start()
        metrics_port = self.metrics.port if self.metrics is not None else None
        log.info("started", extra={"health_port": self.probes.port, "metrics_port": metrics_port})
        try:
            self.service.run(self.stop)
        finally:
            self.watcher.stop()
            if self.plugins is not None:
                self.plugins.stop()
            self.source.stop()
            self.probes.stop()
            if self.metrics is not None:
                self.metrics.stop()


def _require(config: Config) -> None:
    missing = [
        name
        for name, value in (
            ("NODE_NAME", config.node_name),
            ("POD_NAME", config.pod_name),
            ("POD_NAMESPACE", config.pod_namespace),
        )
        if not value
    ]
    if missing and not (config.report_file and config.devices_file):
        raise errors.ConfigError(f"missing downward-API environment: {', '.join(missing)}")


def _parts(config: Config, wake: threading.Event) -> tuple[sources.Source, reporter.Reporter]:
    """The HSMDevice source and the reporter, from files or the API server as configured."""
    client = None
    if not (config.report_file and config.devices_file):
        client = kube.connect()
    source: sources.Source
    if config.devices_file:
        source = sources.Static(pathlib.Path(config.devices_file), config.node_labels)
    else:
        assert client is not None
        source = sources.Watched(
            client,
            config.pod_namespace,
            config.node_name,
            config.device_selector,
            config.resync_interval,
            on_change=wake.set,
        )
    target: sink.Sink
    if config.report_file:
        target = sink.File(pathlib.Path(config.report_file))
    else:
        assert client is not None
        target = sink.PodAnnotation(client, config.pod_namespace, config.pod_name)
    return source, reporter.Reporter(target, config.heartbeat_interval)


def _service(
    config: Config,
    source: sources.Source,
    writer: reporter.Reporter,
    scanner: Callable[[], list[usb.UsbDevice]],
    wake: threading.Event,
    plugins: supervisor.Supervisor | None = None,
) -> service.Service:
    allowlist = ccid.load([pathlib.Path(config.ccid_plist)] if config.ccid_plist else ccid.DEFAULT_PATHS)
    settings = service.Settings(
        node_name=config.node_name or "local",
        rescan_interval=config.rescan_interval,
        forget_after=datetime.timedelta(seconds=config.forget_after),
        ccid_allowlist=allowlist,
        hsm_device=config.hsm_device,
    )
    return service.Service(settings, scanner, source, writer, wake, plugins)


def build(config: Config, stop: threading.Event) -> App:
    """The long-running app: hotplug monitor, HSMDevice source, reporter, device plugins, probes.

    Readiness does not wait for the kubelet: the report is discovery's job, and a plugin's registration
    shows in it.
    """
    _require(config)
    wake = threading.Event()
    source, writer = _parts(config, wake)
    plugins = None
    if config.device_plugin is not None:
        plugins = supervisor.Supervisor(config.device_plugin, on_change=wake.set)
    context = scan.new_context()
    svc = _service(config, source, writer, functools.partial(scan.scan, context), wake, plugins)
    watcher = monitor.Monitor(context, on_change=wake.set, debounce=config.debounce)

    def live() -> bool:
        return svc.live() and watcher.alive() and (plugins is None or plugins.alive())

    probes = health.Server(config.health_listen, live=live, ready=svc.ready)
    return App(
        service=svc,
        source=source,
        watcher=watcher,
        probes=probes,
        stop=stop,
        plugins=plugins,
        metrics=_metrics(config.metrics),
    )


def _metrics(settings: metricsauth.Settings | None) -> metricsauth.MetricsServer | None:
    if settings is None:
        return None
    try:
        return metricsauth.build(
            settings, metrics.REGISTRY, "hsm_discovery_metrics_certificate_expiry_timestamp_seconds"
        )
    except metricsauth.SetupError as err:
        raise errors.ConfigError(f"cannot serve metrics: {err}") from None


def run_once(config: Config) -> bool:
    """Scan and report once; True when the report was written."""
    _require(config)
    wake = threading.Event()
    source, writer = _parts(config, wake)
    svc = _service(config, source, writer, functools.partial(scan.scan, scan.new_context()), wake)
    source.start()
    try:
        # The watch source needs a moment for its first list; it sets wake when it has one.
        deadline = time.monotonic() + ONCE_TIMEOUT
        while time.monotonic() < deadline:
            if svc.step() is not None:
                return writer.written
            wake.wait(timeout=max(0.0, deadline - time.monotonic()))
            wake.clear()
        return False
    finally:
        source.stop()
