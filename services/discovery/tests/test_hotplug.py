"""The discovery process follows hotplug: devices added and removed through libumockdev's testbed API."""

from __future__ import annotations

import http.client
import json
import os
import pathlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

PICO_SYS_PATH = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3"
DRIVER = pathlib.Path(__file__).parent / "testbed_driver.py"


class MockTestbed:
    """A umockdev testbed in a driver process (see testbed_driver.py)."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            ["umockdev-wrapper", sys.executable, str(DRIVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.root = self._readline()

    def _readline(self) -> str:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if not line:
            pytest.fail("testbed driver exited")
        return line

    def _command(self, text: str) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(text + "\n")
        self._proc.stdin.flush()
        answer = self._readline()
        assert answer == "ok", answer

    def add(self, description: pathlib.Path) -> None:
        self._command(f"add {description}")

    def remove(self, sys_path: str) -> None:
        self._command(f"remove {sys_path}")

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait(timeout=10)


class Discovery:
    """hsm-discovery running as its own process inside the testbed, reporting to a file."""

    def __init__(self, testbed: MockTestbed, tmp: pathlib.Path, objects: list[dict[str, Any]]) -> None:
        self.report_file = tmp / "report.json"
        self.log_file = tmp / "discovery.log"
        (tmp / "devices.json").write_text(json.dumps(objects))
        env = {**os.environ, "UMOCKDEV_DIR": testbed.root, "NODE_NAME": "node-a"}
        with self.log_file.open("w") as log:
            self._proc = subprocess.Popen(
                [
                    "umockdev-wrapper", sys.executable, "-m", "hsm_discovery",
                    "--report-file", str(self.report_file),
                    "--devices-file", str(tmp / "devices.json"),
                    "--health-listen", "127.0.0.1:0",
                    "--rescan-interval", "30s",
                    "--debounce", "50ms",
                ],
                env=env,
                stderr=log,
            )  # fmt: skip

    def health_port(self) -> int | None:
        for line in self.log_file.read_text().splitlines():
            entry = json.loads(line)
            if entry["event"] == "started":
                return int(entry["health_port"])
        return None

    def report(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self.report_file.read_text()))
        except FileNotFoundError:
            return None

    def devices(self, name: str) -> list[dict[str, Any]]:
        current = self.report()
        return [] if current is None else list(current["devices"][name]["devices"])

    def stop(self) -> int:
        self._proc.terminate()
        return self._proc.wait(timeout=10)


def get(port: int, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


@pytest.fixture
def testbed(data_dir: pathlib.Path) -> Iterator[MockTestbed]:
    bed = MockTestbed()
    bed.add(data_dir / "roothub.umockdev")
    yield bed
    bed.close()


@pytest.fixture
def discovery(
    testbed: MockTestbed,
    tmp_path: pathlib.Path,
    make_hsm_device: Callable[..., dict[str, Any]],
    wait_for: Callable[..., Any],
) -> Iterator[Discovery]:
    pico = make_hsm_device("pico", discovery={"usb": [{"vendorId": "20a0", "productId": "4230"}]})
    proc = Discovery(testbed, tmp_path, [pico])
    wait_for(proc.report, timeout=15)
    yield proc
    proc.stop()


def test_plugged_device_is_reported_within_a_second(
    discovery: Discovery, testbed: MockTestbed, data_dir: pathlib.Path, wait_for: Callable[..., Any]
) -> None:
    started = time.monotonic()
    testbed.add(data_dir / "pico.umockdev")
    [pico] = wait_for(lambda: discovery.devices("pico"), timeout=1.0)
    print(f"add reported after {time.monotonic() - started:.3f} s")
    assert (pico["serialNumber"], pico["available"]) == ("DC6A33145E23A42A", True)


def test_unplugged_device_is_reported_unavailable_within_a_second(
    discovery: Discovery, testbed: MockTestbed, data_dir: pathlib.Path, wait_for: Callable[..., Any]
) -> None:
    testbed.add(data_dir / "pico.umockdev")
    wait_for(lambda: discovery.devices("pico"), timeout=1.0)
    started = time.monotonic()
    testbed.remove(PICO_SYS_PATH)
    [pico] = wait_for(lambda: [d for d in discovery.devices("pico") if not d["available"]], timeout=1.0)
    print(f"remove reported after {time.monotonic() - started:.3f} s")
    assert pico["lastSeen"]


def test_probes_and_metrics_answer(
    discovery: Discovery, testbed: MockTestbed, data_dir: pathlib.Path, wait_for: Callable[..., Any]
) -> None:
    port = wait_for(discovery.health_port, timeout=5)
    testbed.add(data_dir / "pico.umockdev")
    wait_for(lambda: discovery.devices("pico"), timeout=1.0)
    assert get(port, "/healthz")[0] == 200
    assert get(port, "/readyz")[0] == 200
    status, metrics = get(port, "/metrics")
    assert status == 200
    assert 'hsm_discovery_devices_found{hsm_device="pico"} 1.0' in metrics
    for source in ("udev", "kernel"):
        assert f'hsm_discovery_udev_events_total{{action="add",source="{source}"}}' in metrics
    assert "hsm_discovery_report_patches_total" in metrics


def test_sigterm_stops_the_process_cleanly(discovery: Discovery) -> None:
    assert discovery.stop() == 0
