"""The discovery process follows hotplug: devices added and removed through libumockdev's testbed API."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from . import harness


@pytest.fixture
def discovery(
    testbed: harness.MockTestbed,
    tmp_path: pathlib.Path,
    make_hsm_device: Callable[..., dict[str, Any]],
    wait_for: Callable[..., Any],
    review_api: Any,
) -> Iterator[harness.Discovery]:
    pico = make_hsm_device("pico", discovery={"usb": [{"vendorId": "20a0", "productId": "4230"}]})
    proc = harness.Discovery(testbed, tmp_path, [pico], review_api.kubeconfig)
    wait_for(proc.report, timeout=15)
    yield proc
    proc.stop()


def test_plugged_device_is_reported_within_a_second(
    discovery: harness.Discovery,
    testbed: harness.MockTestbed,
    data_dir: pathlib.Path,
    wait_for: Callable[..., Any],
) -> None:
    started = time.monotonic()
    testbed.add(data_dir / "pico.umockdev")
    [pico] = wait_for(lambda: discovery.devices("pico"), timeout=1.0)
    print(f"add reported after {time.monotonic() - started:.3f} s")
    assert (pico["serialNumber"], pico["available"]) == ("DC6A33145E23A42A", True)


def test_unplugged_device_is_reported_unavailable_within_a_second(
    discovery: harness.Discovery,
    testbed: harness.MockTestbed,
    data_dir: pathlib.Path,
    wait_for: Callable[..., Any],
) -> None:
    testbed.add(data_dir / "pico.umockdev")
    wait_for(lambda: discovery.devices("pico"), timeout=1.0)
    started = time.monotonic()
    testbed.remove(harness.PICO_SYS_PATH)
    [pico] = wait_for(lambda: [d for d in discovery.devices("pico") if not d["available"]], timeout=1.0)
    print(f"remove reported after {time.monotonic() - started:.3f} s")
    assert pico["lastSeen"]


def test_probes_and_metrics_answer(
    discovery: harness.Discovery,
    testbed: harness.MockTestbed,
    data_dir: pathlib.Path,
    wait_for: Callable[..., Any],
    review_api: Any,
) -> None:
    port = wait_for(lambda: discovery.port("health"), timeout=5)
    testbed.add(data_dir / "pico.umockdev")
    wait_for(lambda: discovery.devices("pico"), timeout=1.0)
    assert harness.get(port, "/healthz")[0] == 200
    assert harness.get(port, "/readyz")[0] == 200
    assert harness.get(port, "/metrics")[0] == 404
    scraped = review_api.scrape(discovery.port("metrics"))
    assert scraped.status == 200
    metrics = scraped.text
    assert 'hsm_discovery_devices_found{hsm_device="pico"} 1.0' in metrics
    for source in ("udev", "kernel"):
        assert f'hsm_discovery_udev_events_total{{action="add",source="{source}"}}' in metrics
    assert "hsm_discovery_report_patches_total" in metrics
    assert "hsm_discovery_metrics_certificate_expiry_timestamp_seconds " in metrics


def test_metrics_need_a_token_allowed_to_get_them(
    discovery: harness.Discovery, wait_for: Callable[..., Any], review_api: Any
) -> None:
    port = wait_for(lambda: discovery.port("metrics"), timeout=5)
    assert review_api.scrape(port, token=None).status == 401
    assert review_api.scrape(port, token=review_api.stranger).status == 403


def test_sigterm_stops_the_process_cleanly(discovery: harness.Discovery) -> None:
    assert discovery.stop() == 0
