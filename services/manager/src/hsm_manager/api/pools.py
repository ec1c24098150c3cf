"""The HSMPools of the HSMDevices' namespace, read from the Kubernetes API for the devices' health view.

The operator aggregates each HSMDevice's discovery reports into its HSMPool (phase, device counts,
conditions); the API reads them as they are, so the console shows the pool's own state, also of an
HSMDevice whose agents are all down (which the agents' health cannot tell).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Protocol

import pydantic

from hsm_common import constants, models
from hsm_manager import kube

from . import errors

log = logging.getLogger(__name__)


class PoolSource(Protocol):
    def list_custom(self, kind: str, namespace: str | None = None) -> list[kube.Obj]:
        """Every custom object of kind in namespace."""


@dataclasses.dataclass(frozen=True)
class Pool:
    """One HSMPool: its HSMDevice and its status (None when it could not be parsed, see error)."""

    name: str
    device: str
    status: models.HSMPoolStatus | None
    error: str = ""
    """Why the status could not be parsed (counts only, never the stored text)."""


def read(source: PoolSource, namespace: str) -> list[Pool]:
    """Every HSMPool of namespace, sorted by name; KubernetesUnavailable when they cannot be listed."""
    try:
        found = source.list_custom(constants.KIND_POOL, namespace)
    except kube.KubeError as error:
        # A kube error names the request and its status only.
        log.warning("pools_unreadable", extra={"error": str(error), "status": error.status})
        raise errors.KubernetesUnavailable(f"the HSMPools could not be read: {error}") from None
    return sorted((_pool(obj) for obj in found), key=lambda pool: pool.name)


def _pool(obj: kube.Obj) -> Pool:
    meta = obj.get("metadata") or {}
    name = str(meta.get("name", ""))
    device = str((meta.get("labels") or {}).get(constants.LABEL_DEVICE, ""))
    try:
        status = models.HSMPoolStatus.model_validate(obj.get("status") or {})
    except pydantic.ValidationError as exc:
        return Pool(name, device, None, f"unreadable status ({exc.error_count()} errors)")
    return Pool(name, device, status)
