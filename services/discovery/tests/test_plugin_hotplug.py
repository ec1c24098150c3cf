"""The discovery process serves the device plugin and follows real libudev hotplug (umockdev testbed)."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hsm_common import constants

from . import fake_kubelet, harness

PICO = constants.resource_name("pico")
SERIAL = "DC6A33145E23A42A"
TIMEOUT = 15.0


@pytest.fixture
def discovery(
    testbed: harness.MockTestbed,
    kubelet: fake_kubelet.FakeKubelet,
    tmp_path: pathlib.Path,
    make_hsm_device: Callable[..., dict[str, Any]],
    wait_for: Callable[..., Any],
    review_api: Any,
) -> Iterator[harness.Discovery]:
    """Discovery with its plugin configured the way the manager does it: through HSM_DISCOVERY_* variables."""
    pico = make_hsm_device("pico", discovery={"usb": [{"vendorId": "20a0", "productId": "4230"}]})
    env = {
        "HSM_DISCOVERY_DEVICE_PLUGIN_DIR": str(kubelet.dir),
        "HSM_DISCOVERY_DEVICE_NODE_ROOT": "/var/lib/hsm-devcluster/devnodes",
        "HSM_DISCOVERY_DEVICE_MOUNTS": "/var/lib/softhsm/tokens,/etc/softhsm",
        "HSM_DISCOVERY_DEVICE_ENV": "SOFTHSM2_CONF=/etc/softhsm/softhsm2.conf",
    }
    proc = harness.Discovery(testbed, tmp_path, [pico], review_api.kubeconfig, env=env)
    wait_for(lambda: kubelet.registered(PICO), timeout=TIMEOUT)
    yield proc
    proc.stop()


def test_plugin_registers_and_streams_no_device_before_one_is_plugged(
    discovery: harness.Discovery, kubelet: fake_kubelet.FakeKubelet, wait_for: Callable[..., Any]
) -> None:
    assert wait_for(lambda: kubelet.devices(PICO) is not None, timeout=TIMEOUT)
    assert kubelet.devices(PICO) == {}


def test_plugin_follows_plug_unplug_and_replug(
    discovery: harness.Discovery,
    kubelet: fake_kubelet.FakeKubelet,
    testbed: harness.MockTestbed,
    data_dir: pathlib.Path,
    wait_for: Callable[..., Any],
) -> None:
    testbed.add(data_dir / "pico.umockdev")
    wait_for(lambda: kubelet.devices(PICO) == {SERIAL: "Healthy"}, timeout=TIMEOUT)
    testbed.remove(harness.PICO_SYS_PATH)
    wait_for(lambda: kubelet.devices(PICO) == {SERIAL: "Unhealthy"}, timeout=TIMEOUT)
    testbed.add(data_dir / "pico.umockdev")
    wait_for(lambda: kubelet.devices(PICO) == {SERIAL: "Healthy"}, timeout=TIMEOUT)


def test_allocate_gives_the_plugged_device_node_mounts_and_env(
    discovery: harness.Discovery,
    kubelet: fake_kubelet.FakeKubelet,
    testbed: harness.MockTestbed,
    data_dir: pathlib.Path,
    wait_for: Callable[..., Any],
) -> None:
    testbed.add(data_dir / "pico.umockdev")
    wait_for(lambda: kubelet.devices(PICO) == {SERIAL: "Healthy"}, timeout=TIMEOUT)
    [container] = kubelet.allocate(PICO, [SERIAL]).container_responses
    assert [(d.host_path, d.container_path, d.permissions) for d in container.devices] == [
        ("/var/lib/hsm-devcluster/devnodes/dev/bus/usb/001/015", "/dev/bus/usb/001/015", "rw")
    ]
    assert [m.host_path for m in container.mounts] == ["/var/lib/softhsm/tokens", "/etc/softhsm"]
    assert dict(container.envs) == {"SOFTHSM2_CONF": "/etc/softhsm/softhsm2.conf"}


def test_report_and_metrics_show_the_plugin(
    discovery: harness.Discovery,
    kubelet: fake_kubelet.FakeKubelet,
    testbed: harness.MockTestbed,
    data_dir: pathlib.Path,
    wait_for: Callable[..., Any],
    review_api: Any,
) -> None:
    testbed.add(data_dir / "pico.umockdev")

    def plugin() -> dict[str, Any]:
        return dict(discovery.entries("pico").get("plugin") or {})

    wait_for(lambda: plugin().get("healthy") == 1, timeout=TIMEOUT)
    assert plugin() == {"resource": PICO, "registered": True, "healthy": 1}
    scraped = review_api.scrape(wait_for(lambda: discovery.port("metrics"), timeout=TIMEOUT))
    assert scraped.status == 200
    metrics = scraped.text
    assert 'hsm_discovery_plugin_registrations_total{hsm_device="pico",result="ok"} 1.0' in metrics
    assert 'hsm_discovery_plugin_healthy_devices{hsm_device="pico"} 1.0' in metrics


def test_kubelet_restart_gets_a_new_registration(
    discovery: harness.Discovery, kubelet: fake_kubelet.FakeKubelet, wait_for: Callable[..., Any]
) -> None:
    kubelet.restart()
    wait_for(lambda: len(kubelet.registered(PICO)) == 2, timeout=TIMEOUT)
    assert wait_for(lambda: kubelet.devices(PICO) is not None, timeout=TIMEOUT) is True


def test_sigterm_removes_the_plugin_socket(
    discovery: harness.Discovery, kubelet: fake_kubelet.FakeKubelet
) -> None:
    assert (kubelet.dir / "hsm-pico.sock").is_socket()
    assert discovery.stop() == 0
    assert not (kubelet.dir / "hsm-pico.sock").exists()
