"""Serves and registers one device plugin per HSMDevice, and does both again after a kubelet restart."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

from hsm_common import report
from hsm_discovery import errors, metrics

from . import config, devices, endpoint, kubelet, resource, servicer

log = logging.getLogger(__name__)

POLL_INTERVAL = 1.0
"""Seconds between looks at the sockets: the kubelet says nothing when it restarts, it only deletes every
socket in the dir and makes a new kubelet.sock."""
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0


@dataclasses.dataclass
class _Plugin:
    """The supervisor thread's record of one plugin (no other thread touches it)."""

    resource: resource.Resource
    server: endpoint.Endpoint | None = None
    kubelet: endpoint.Identity | None = None
    """The kubelet.sock the last registration attempt went to."""
    registered: bool = False
    failures: int = 0
    retry_at: float = 0.0


class Supervisor:
    """Keeps a registered plugin for every HSMDevice of the latest report.

    Its one thread starts, restarts and stops every gRPC server and makes every registration, so no two
    ever race for a socket; the reporting loop only hands over device lists through offer.
    """

    def __init__(self, settings: config.Config, on_change: Callable[[], None]) -> None:
        """on_change is called when a plugin's status changes, so the report can follow."""
        self._settings = settings
        self._on_change = on_change
        # Guards _resources: offer (reporting loop) replaces entries, the supervisor thread reads them.
        self._lock = threading.Lock()
        self._resources: dict[str, resource.Resource] = {}
        self._plugins: dict[str, _Plugin] = {}
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="device-plugins", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop every plugin (removing its socket) and the thread."""
        self._stop.set()
        self._kick.set()
        self._thread.join(timeout=2 * endpoint.STOP_TIMEOUT + kubelet.REGISTER_TIMEOUT)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def offer(self, rep: report.DeviceReport) -> dict[str, report.PluginStatus]:
        """Give each plugin its HSMDevice's devices from rep (creating and dropping plugins to match the
        HSMDevices rep reports without error); the plugins' statuses, by HSMDevice."""
        wanted = {
            name: devices.offered(entry)
            for name, entry in rep.devices.items()
            if entry.status == report.ReportStatus.OK
        }
        with self._lock:
            membership = wanted.keys() != self._resources.keys()
            self._resources = {
                name: self._resources.get(name) or resource.Resource(name, on_status=self._on_change)
                for name in wanted
            }
            for name, offered in wanted.items():
                self._resources[name].offer(offered)
            statuses = {name: r.status() for name, r in self._resources.items()}
        if membership:
            self._kick.set()
        metrics.set_plugin_healthy({name: status.healthy for name, status in statuses.items()})
        return statuses

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._reconcile()
                self._kick.wait(POLL_INTERVAL)
                self._kick.clear()
        finally:
            for plugin in self._plugins.values():
                if plugin.server is not None:
                    plugin.server.stop()

    def _reconcile(self) -> None:
        """One look: drop the plugins of HSMDevices no longer reported, then tend every wanted one."""
        with self._lock:
            wanted = dict(self._resources)
        for name in list(self._plugins):
            plugin = self._plugins[name]
            if wanted.get(name) is not plugin.resource:
                self._drop(name, plugin)
        found = endpoint.identity(self._settings.plugin_dir / kubelet.SOCKET)
        for name, offer in wanted.items():
            plugin = self._plugins.setdefault(name, _Plugin(resource=offer))
            self._tend(plugin, found)

    def _drop(self, name: str, plugin: _Plugin) -> None:
        if plugin.server is not None:
            plugin.server.stop()
        del self._plugins[name]
        log.info("plugin_stopped", extra={"hsm_device": name})

    def _tend(self, plugin: _Plugin, found: endpoint.Identity | None) -> None:
        """Serve and register plugin unless it is registered with the kubelet.sock found now."""
        name = plugin.resource.hsm_device
        lost = plugin.server is not None and not plugin.server.intact()
        if lost or found != plugin.kubelet:
            if plugin.registered:
                reason = "socket_removed" if lost else "kubelet_restarted"
                log.info("plugin_registration_lost", extra={"hsm_device": name, "reason": reason})
                plugin.resource.unregistered(f"registration lost ({reason.replace('_', ' ')})")
            # A new kubelet (or a socket to replace) is news: try at once instead of finishing a backoff.
            plugin.registered = False
            plugin.failures = 0
            plugin.retry_at = 0.0
        if lost and plugin.server is not None:
            plugin.server.stop()
            plugin.server = None
        if plugin.registered or time.monotonic() < plugin.retry_at:
            return
        plugin.kubelet = found
        try:
            if plugin.server is None:
                path = self._settings.plugin_dir / devices.socket_name(name)
                plugin.server = endpoint.Endpoint(path, servicer.Servicer(plugin.resource, self._settings))
            if found is None:
                raise errors.PluginError(f"no kubelet socket at {self._settings.plugin_dir / kubelet.SOCKET}")
            kubelet.register(self._settings.plugin_dir, plugin.server.path.name, plugin.resource.name)
        except errors.PluginError as err:
            plugin.failures += 1
            delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (plugin.failures - 1))
            plugin.retry_at = time.monotonic() + delay
            metrics.PLUGIN_REGISTRATIONS.labels(hsm_device=name, result="error").inc()
            log.warning(
                "plugin_registration_failed",
                extra={"hsm_device": name, "error": str(err), "failures": plugin.failures, "retry_in": delay},
            )
            plugin.resource.unregistered(str(err))
            return
        plugin.registered = True
        metrics.PLUGIN_REGISTRATIONS.labels(hsm_device=name, result="ok").inc()
        log.info(
            "plugin_registered",
            extra={"hsm_device": name, "resource": plugin.resource.name, "socket": str(plugin.server.path)},
        )
        plugin.resource.registered()
