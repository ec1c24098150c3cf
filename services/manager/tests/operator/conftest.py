"""The operator wired at its bootstrap seam with fakes: an in-memory API server and in-memory agents."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hsm_common import constants
from hsm_manager import kube
from hsm_manager.operator import config, runtime

from .. import fakes

OPERATOR_NS = "hsm-system"
APP_NS = "app"
DEVICE = "hsm"
AGENTS = ("hsm-a", "hsm-b")


def hsmdevice(name: str = DEVICE) -> kube.Obj:
    return {
        "apiVersion": constants.API_VERSION,
        "kind": constants.KIND_DEVICE,
        "metadata": {"name": name, "namespace": OPERATOR_NS},
        "spec": {
            "deviceType": "Generic",
            "pkcs11": {"libraryPath": "/usr/lib/x.so", "pinSecret": {"name": "pin", "key": "pin"}},
        },
    }


def hsmsecret(name: str = "db", **spec: Any) -> kube.Obj:
    return {
        "apiVersion": constants.API_VERSION,
        "kind": constants.KIND_SECRET,
        "metadata": {"name": name, "namespace": APP_NS},
        "spec": {"device": DEVICE, **spec},
    }


@pytest.fixture
def cfg() -> config.OperatorConfig:
    return config.OperatorConfig(namespace=OPERATOR_NS, workers=2, mirror_interval=0)


@pytest.fixture
def cluster() -> fakes.FakeKube:
    """The API server, holding one HSMDevice."""
    found = fakes.FakeKube()
    found.add(hsmdevice())
    return found


@pytest.fixture
def directory() -> fakes.FakeDirectory:
    """Two Ready agents of the HSMDevice (one device each)."""
    found = fakes.FakeDirectory()
    for name in AGENTS:
        found.add(DEVICE, name, namespace=OPERATOR_NS)
    return found


@pytest.fixture
def rt(
    cfg: config.OperatorConfig, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> Iterator[runtime.Runtime]:
    """The runtime as bootstrap wires it, not started (tests that need its threads start it)."""
    wired = runtime.bootstrap(cfg, cluster, directory)  # type: ignore[arg-type]
    yield wired
    wired.stop()
