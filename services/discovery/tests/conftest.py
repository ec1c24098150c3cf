"""Fixtures shared by the discovery tests: device descriptions, HSMDevice objects, polling."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable
from typing import Any

import pytest

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
