"""Object metadata shared by everything the operator creates: owner references and labels."""

from __future__ import annotations

import dataclasses
from typing import Any

from hsm_common import constants


@dataclasses.dataclass(frozen=True)
class Owner:
    """The object that owns what is created (garbage-collected with it)."""

    api_version: str
    kind: str
    name: str
    uid: str

    def reference(self) -> dict[str, Any]:
        """The ownerReference to put in an owned object's metadata."""
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def device_owner(name: str, uid: str) -> Owner:
    """The owner reference of an HSMDevice."""
    return Owner(constants.API_VERSION, constants.KIND_DEVICE, name, uid)


def labels(component: str, device: str, instance: str) -> dict[str, str]:
    """The labels of an object the operator creates for device."""
    return {
        constants.LABEL_MANAGED_BY: constants.MANAGED_BY_VALUE,
        constants.LABEL_COMPONENT: component,
        constants.LABEL_DEVICE: device,
        "app.kubernetes.io/instance": instance,
    }
