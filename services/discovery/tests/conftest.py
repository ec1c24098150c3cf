"""Fixtures shared by the discovery tests: device descriptions, HSMDevice objects, polling."""

from __future__ import annotations

import pathlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from . import fake_kubelet, harness

DATA = pathlib.Path(__file__).parent / "data"


def hsm_device(name: str, **spec: Any) -> dict[str, Any]:
    """An HSMDevice object as the API server returns it, with a valid pkcs11 section."""
    body: dict[str, Any] = {
        "deviceType": "Generic",
        "pkcs11": {
            "libraryPath": "/usr/lib/softhsm/libsofthsm2.so",
            "pinSecret": {"name": "pin", "key": "pin"},
        },
    }
    body.update(spec)
    return {
        "apiVersion": "hsm.j5t.io/v1alpha1",
        "kind": "HSMDevice",
        "metadata": {"name": name},
        "spec": body,
    }


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
    return DATA


@pytest.fixture(scope="session")
def make_hsm_device() -> Callable[..., dict[str, Any]]:
    return hsm_device


def poll(condition: Callable[[], Any], timeout: float, interval: float = 0.01) -> Any:
    """condition's first truthy result within timeout seconds; fails the test otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)


@pytest.fixture
def wait_for() -> Callable[..., Any]:
    return poll


@pytest.fixture
def plugin_dir() -> Iterator[pathlib.Path]:
    """A device-plugin dir with a short path: socket paths end at 107 bytes, and pytest's tmp_path is long."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="dp-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def kubelet(plugin_dir: pathlib.Path) -> Iterator[fake_kubelet.FakeKubelet]:
    fake = fake_kubelet.FakeKubelet(plugin_dir)
    yield fake
    fake.stop()


@pytest.fixture
def testbed(data_dir: pathlib.Path) -> Iterator[harness.MockTestbed]:
    """A umockdev testbed with a root hub and no device plugged yet."""
    bed = harness.MockTestbed()
    bed.add(data_dir / "roothub.umockdev")
    yield bed
    bed.close()
