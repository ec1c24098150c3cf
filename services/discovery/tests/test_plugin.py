"""The device plugins against a stand-in kubelet on real unix sockets: registration, streams, Allocate,
re-registration after kubelet restarts."""

from __future__ import annotations

import datetime
import json
import pathlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from hsm_common import constants, report
from hsm_discovery import metrics, reporter, service, sink, sources, usb
from hsm_discovery.plugin import config, supervisor

from . import fake_kubelet

T0 = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
PICO = constants.resource_name("pico")
TIMEOUT = 10.0


def device(serial: str, devnum: int, available: bool = True) -> report.ReportedDevice:
    return report.ReportedDevice(
        device_path=f"/dev/bus/usb/001/{devnum:03d}",
        serial_number=serial,
        vendor_id="20a0",
        product_id="4230",
        bus_path=f"/sys/devices/usb1/1-{devnum}",
        available=available,
        last_seen=T0,
    )


def reported(**entries: list[report.ReportedDevice]) -> report.DeviceReport:
    return report.DeviceReport(
        node_name="node-a",
        report_time=T0,
        devices={name: report.DeviceEntry(devices=devices) for name, devices in entries.items()},
    )


class Plugins:
    """A started Supervisor and a way to wait for its status changes."""

    def __init__(self, settings: config.Config) -> None:
        self.changed = threading.Event()
        self.supervisor = supervisor.Supervisor(settings, on_change=self.changed.set)
        self.statuses: dict[str, report.PluginStatus] = {}

    def offer(self, rep: report.DeviceReport) -> dict[str, report.PluginStatus]:
        self.statuses = self.supervisor.offer(rep)
        return self.statuses


@pytest.fixture
def settings(plugin_dir: pathlib.Path) -> config.Config:
    return config.Config(
        plugin_dir=plugin_dir,
        node_root="/var/lib/devnodes",
        mounts=("/var/lib/softhsm/tokens",),
        env={"SOFTHSM2_CONF": "/var/lib/softhsm/softhsm2.conf"},
    )


@pytest.fixture
def plugins(settings: config.Config) -> Iterator[Plugins]:
    started = Plugins(settings)
    started.supervisor.start()
    yield started
    started.supervisor.stop()


def registered(plugins: Plugins, rep: report.DeviceReport, name: str = "pico") -> Callable[[], bool]:
    """A condition: the plugin of name reports itself registered (offering rep again to read the status)."""
    return lambda: plugins.offer(rep)[name].registered


def test_plugin_registers_its_resource_with_the_kubelet(
    kubelet: fake_kubelet.FakeKubelet, plugins: Plugins, wait_for: Callable[..., Any]
) -> None:
    plugins.offer(reported(pico=[device("A1", 15)]))
    [registration] = wait_for(lambda: kubelet.registered(PICO), timeout=TIMEOUT)
    assert registration.request.version == "v1beta1"
    assert registration.request.endpoint == "hsm-pico.sock"
    assert (kubelet.dir / registration.request.endpoint).is_socket()
    assert not registration.request.options.pre_start_required
    assert not registration.request.options.get_preferred_allocation_available
    assert registration.options == registration.request.options


def test_status_tells_registration_and_healthy_devices(
    kubelet: fake_kubelet.FakeKubelet, plugins: Plugins, wait_for: Callable[..., Any]
) -> None:
    rep = reported(pico=[device("A1", 15), device("B2", 16, available=False)])
    wait_for(registered(plugins, rep), timeout=TIMEOUT)
    assert plugins.offer(rep)["pico"] == report.PluginStatus(resource=PICO, registered=True, healthy=1)


def test_list_and_watch_streams_every_device_with_its_health(
    kubelet: fake_kubelet.FakeKubelet, plugins: Plugins, wait_for: Callable[..., Any]
) -> None:
    plugins.offer(reported(pico=[device("A1", 15), device("B2", 16, available=False)]))
    assert wait_for(lambda: kubelet.devices(PICO), timeout=TIMEOUT) == {"A1": "Healthy", "B2": "Unhealthy"}


def test_unplugged_device_turns_unhealthy_and_back_healthy_on_replug(
    kubelet: fake_kubelet.FakeKubelet, plugins: Plugins, wait_for: Callable[..., Any]
) -> None:
    plugins.offer(reported(pico=[device("A1", 15)]))
    wait_for(lambda: kubelet.devices(PICO) == {"A1": "Healthy"}, timeout=TIMEOUT)
    plugins.offer(reported(pico=[device("A1", 15, available=False)]))
    wait_for(lambda: kubelet.devices(PICO) == {"A1": "Unhealthy"}, timeout=TIMEOUT)
    plugins.offer(reported(pico=[device("A1", 17)]))
    wait_for(lambda: kubelet.devices(PICO) == {"A1": "Healthy"}, timeout=TIMEOUT)


def test_each_hsm_device_is_its_own_resource(
    kubelet: fake_kubelet.FakeKubelet, plugins: Plugins, wait_for: Callable[..., Any]
) -> None:
    plugins.offer(reported(pico=[device("A1", 15)], schsm=[device("S1", 16)]))
    wait_for(lambda: kubelet.devices(PICO) == {"A1": "Healthy"}, timeout=TIMEOUT)
    schsm = constants.resource_name("schsm")
    wait_for(lambda: kubelet.devices(schsm) == {"S1": "Healthy"}, timeout=TIMEOUT)
    assert kubelet.registered(schsm)[0].request.endpoint == "hsm-schsm.sock"


def test_allocate_gives_every_healthy_device_node_the_mounts_and_the_env(
    kubelet: fake_kubelet.FakeKubelet, plugins: Plugins, wait_for: Callable[..., Any]
) -> None:
    plugins.offer(reported(pico=[device("A1", 15), device("B2", 16), device("C3", 17, available=False)]))
    wait_for(lambda: kubelet.devices(PICO), timeout=TIMEOUT)
    [container] = kubelet.allocate(PICO, ["A1"]).container_responses
    assert [(d.host_path, d.container_path, d.permissions) for d in container.devices] == [
        ("/var/lib/devnodes/dev/bus/usb/001/015", "/dev/bus/usb/001/015", "rw"),
        ("/var/lib/devnodes/dev/bus/usb/001/016", "/dev/bus/usb/001/016", "rw"),
    ]
    assert [(m.host_path, m.container_path, m.read_only) for m in container.mounts] == [
        ("/var/lib/softhsm/tokens", "/var/lib/softhsm/tokens", False)
    ]
    assert dict(container.envs) == {"SOFTHSM2_CONF": "/var/lib/softhsm/softhsm2.conf"}


def test_allocate_answers_each_container(
    kubelet: fake_kubelet.FakeKubelet, plugins: Plugins, wait_for: Callable[..., Any]
) -> None:
    plugins.offer(reported(pico=[device("A1", 15), device("B2", 16)]))
    wait_for(lambda: kubelet.devices(PICO), timeout=TIMEOUT)
    assert len(kubelet.allocate(PICO, ["A1"], ["B2"]).container_responses) == 2


def test_allocate_refuses_an_unknown_device_and_tells_it_in_the_status(
    kubelet: fake_kubelet.FakeKubelet, plugins: Plugins, wait_for: Callable[..., Any]
) -> None:
    rep = reported(pico=[device("A1", 15)])
    wait_for(registered(plugins, rep), timeout=TIMEOUT)
    wait_for(lambda: kubelet.devices(PICO), timeout=TIMEOUT)
    plugins.changed.clear()
    before = metrics.PLUGIN_ALLOCATIONS.labels(hsm_device="pico", result="unknown_device")._value.get()
    with pytest.raises(grpc.RpcError) as refused:
        kubelet.allocate(PICO, ["Z9"])
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert "'Z9' is not offered on this node (offered: A1)" in str(refused.value.details())
    assert plugins.changed.wait(TIMEOUT)
    assert "Z9" in (plugins.offer(rep)["pico"].error or "")
    after = metrics.PLUGIN_ALLOCATIONS.labels(hsm_device="pico", result="unknown_device")._value.get()
    assert after == before + 1


def test_allocate_refuses_an_unplugged_device(
    kubelet: fake_kubelet.FakeKubelet, plugins: Plugins, wait_for: Callable[..., Any]
) -> None:
    plugins.offer(reported(pico=[device("A1", 15, available=False)]))
    wait_for(lambda: kubelet.devices(PICO), timeout=TIMEOUT)
    with pytest.raises(grpc.RpcError) as refused:
        kubelet.allocate(PICO, ["A1"])
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "unplugged" in str(refused.value.details())


def test_a_later_allocation_clears_the_refusal_from_the_status(
    kubelet: fake_kubelet.FakeKubelet, plugins: Plugins, wait_for: Callable[..., Any]
) -> None:
    rep = reported(pico=[device("A1", 15)])
    wait_for(registered(plugins, rep), timeout=TIMEOUT)
    wait_for(lambda: kubelet.devices(PICO), timeout=TIMEOUT)
    with pytest.raises(grpc.RpcError):
        kubelet.allocate(PICO, ["Z9"])
    kubelet.allocate(PICO, ["A1"])
    assert plugins.offer(rep)["pico"].error is None


def test_deleted_plugin_socket_is_served_and_registered_again(
    kubelet: fake_kubelet.FakeKubelet, plugins: Plugins, wait_for: Callable[..., Any]
) -> None:
    plugins.offer(reported(pico=[device("A1", 15)]))
    [first] = wait_for(lambda: kubelet.registered(PICO), timeout=TIMEOUT)
    (kubelet.dir / first.request.endpoint).unlink()
    wait_for(lambda: len(kubelet.registered(PICO)) == 2, timeout=TIMEOUT)
    assert (kubelet.dir / first.request.endpoint).is_socket()
    assert wait_for(lambda: kubelet.devices(PICO), timeout=TIMEOUT) == {"A1": "Healthy"}


def test_kubelet_restart_is_followed_by_a_new_registration(
    kubelet: fake_kubelet.FakeKubelet, plugins: Plugins, wait_for: Callable[..., Any]
) -> None:
    plugins.offer(reported(pico=[device("A1", 15)]))
    wait_for(lambda: kubelet.registered(PICO), timeout=TIMEOUT)
    kubelet.restart()
    wait_for(lambda: len(kubelet.registered(PICO)) == 2, timeout=TIMEOUT)
    assert wait_for(lambda: kubelet.devices(PICO), timeout=TIMEOUT) == {"A1": "Healthy"}


def test_new_kubelet_socket_alone_is_registered_with_again(
    kubelet: fake_kubelet.FakeKubelet, plugins: Plugins, wait_for: Callable[..., Any]
) -> None:
    plugins.offer(reported(pico=[device("A1", 15)]))
    wait_for(lambda: kubelet.registered(PICO), timeout=TIMEOUT)
    kubelet.stop()
    kubelet.start()
    wait_for(lambda: len(kubelet.registered(PICO)) == 2, timeout=TIMEOUT)


def test_without_a_kubelet_the_status_says_so_until_one_starts(
    plugin_dir: pathlib.Path, plugins: Plugins, wait_for: Callable[..., Any]
) -> None:
    rep = reported(pico=[device("A1", 15)])
    plugins.offer(rep)
    assert plugins.changed.wait(TIMEOUT)
    status = plugins.offer(rep)["pico"]
    assert not status.registered
    assert "no kubelet socket" in (status.error or "")
    kubelet = fake_kubelet.FakeKubelet(plugin_dir)
    try:
        wait_for(registered(plugins, rep), timeout=TIMEOUT)
        assert plugins.offer(rep)["pico"].error is None
    finally:
        kubelet.stop()


def test_hsm_device_no_longer_reported_loses_its_plugin(
    kubelet: fake_kubelet.FakeKubelet, plugins: Plugins, wait_for: Callable[..., Any]
) -> None:
    plugins.offer(reported(pico=[device("A1", 15)]))
    wait_for(lambda: kubelet.streaming(PICO), timeout=TIMEOUT)
    assert plugins.offer(reported()) == {}
    wait_for(lambda: not (kubelet.dir / "hsm-pico.sock").exists(), timeout=TIMEOUT)
    wait_for(lambda: not kubelet.streaming(PICO), timeout=TIMEOUT)


def test_hsm_device_in_error_gets_no_plugin(kubelet: fake_kubelet.FakeKubelet, plugins: Plugins) -> None:
    rep = report.DeviceReport(
        node_name="node-a",
        report_time=T0,
        devices={"bad": report.DeviceEntry(status=report.ReportStatus.ERROR, error="invalid HSMDevice")},
    )
    assert plugins.offer(rep) == {}


def test_stopping_removes_every_socket(
    kubelet: fake_kubelet.FakeKubelet, settings: config.Config, wait_for: Callable[..., Any]
) -> None:
    plugins = Plugins(settings)
    plugins.supervisor.start()
    plugins.offer(reported(pico=[device("A1", 15)]))
    wait_for(lambda: kubelet.registered(PICO), timeout=TIMEOUT)
    plugins.supervisor.stop()
    assert not (kubelet.dir / "hsm-pico.sock").exists()
    assert not plugins.supervisor.alive()


def test_report_carries_each_plugin_status(
    kubelet: fake_kubelet.FakeKubelet,
    plugins: Plugins,
    tmp_path: pathlib.Path,
    make_hsm_device: Callable[..., dict[str, Any]],
    wait_for: Callable[..., Any],
) -> None:
    devices_file = tmp_path / "devices.json"
    devices_file.write_text(
        json.dumps([make_hsm_device("pico", discovery={"usb": [{"vendorId": "20a0", "productId": "4230"}]})])
    )
    pico = usb.UsbDevice("/sys/1-3", "/dev/bus/usb/001/015", "20a0", "4230", serial="A1")
    settings = service.Settings("node-a", 30.0, datetime.timedelta(days=1), frozenset())
    writer = reporter.Reporter(sink.File(tmp_path / "report.json"), heartbeat=60)
    svc = service.Service(
        settings,
        lambda: [pico],
        sources.Static(devices_file, {}),
        writer,
        threading.Event(),
        plugins.supervisor,
    )

    def plugin() -> report.PluginStatus | None:
        rep = svc.step()
        return None if rep is None else rep.devices["pico"].plugin

    status = wait_for(lambda: (found := plugin()) is not None and found.registered and found, timeout=TIMEOUT)
    assert status == report.PluginStatus(resource=PICO, registered=True, healthy=1)
    written = report.DeviceReport.model_validate(json.loads((tmp_path / "report.json").read_text()))
    assert written.devices["pico"].plugin == status
