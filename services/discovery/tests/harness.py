"""The discovery process and a umockdev testbed it runs in, for the tests that drive real libudev hotplug."""

from __future__ import annotations

import http.client
import json
import os
import pathlib
import subprocess
import sys
from typing import Any

import pytest

DRIVER = pathlib.Path(__file__).parent / "testbed_driver.py"
PICO_SYS_PATH = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3"


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
    """hsm-discovery running as its own process inside the testbed, reporting to a file.

    It serves no device plugin unless env names a device-plugin dir (HSM_DISCOVERY_DEVICE_PLUGIN_DIR).
    """

    def __init__(
        self,
        testbed: MockTestbed,
        tmp: pathlib.Path,
        objects: list[dict[str, Any]],
        reviews: pathlib.Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.report_file = tmp / "report.json"
        self.log_file = tmp / "discovery.log"
        (tmp / "devices.json").write_text(json.dumps(objects))
        env = {
            **os.environ,
            "UMOCKDEV_DIR": testbed.root,
            "NODE_NAME": "node-a",
            "HSM_DISCOVERY_DEVICE_PLUGIN_DIR": "",
            # Who reviews the metrics endpoint's callers (the HSMDevices come from a file).
            "KUBECONFIG": str(reviews),
            **(env or {}),
        }
        with self.log_file.open("w") as log:
            self._proc = subprocess.Popen(
                [
                    "umockdev-wrapper", sys.executable, "-m", "hsm_discovery",
                    "--report-file", str(self.report_file),
                    "--devices-file", str(tmp / "devices.json"),
                    "--health-listen", "127.0.0.1:0",
                    "--metrics-listen", "127.0.0.1:0",
                    "--rescan-interval", "30s",
                    "--debounce", "50ms",
                ],
                env=env,
                stderr=log,
            )  # fmt: skip

    def port(self, which: str) -> int | None:
        """The port of the probes ("health") or of the metrics ("metrics"), once the process started."""
        for line in self.log_file.read_text().splitlines():
            entry = json.loads(line)
            if entry["event"] == "started":
                return int(entry[f"{which}_port"])
        return None

    def report(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self.report_file.read_text()))
        except FileNotFoundError:
            return None

    def devices(self, name: str) -> list[dict[str, Any]]:
        current = self.report()
        return [] if current is None else list(current["devices"][name]["devices"])

    def entries(self, name: str) -> dict[str, Any]:
        """The report entry of the HSMDevice name; empty before the first report."""
        current = self.report()
        return {} if current is None else dict(current["devices"][name])

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
