"""What sync passes left in the fake API server for the HSMSecret app/db: its Secret, its data, its status."""

from __future__ import annotations

import base64
from typing import Any

from hsm_common import constants

from .. import fakes
from .conftest import APP_NS


def secret(cluster: fakes.FakeKube) -> dict[str, Any]:
    found = cluster.stored("Secret", APP_NS, "db")
    assert found is not None
    return found


def data(cluster: fakes.FakeKube) -> dict[str, bytes]:
    """The Secret's data, decoded."""
    return {k: base64.b64decode(v) for k, v in secret(cluster)["data"].items()}


def status(cluster: fakes.FakeKube) -> dict[str, Any]:
    found = cluster.stored(constants.KIND_SECRET, APP_NS, "db")
    assert found is not None
    result: dict[str, Any] = found["status"]
    return result
