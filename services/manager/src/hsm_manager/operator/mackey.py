"""The installation's MAC key: what the data MACs in Secrets and statuses are keyed with."""

from __future__ import annotations

import secrets

from hsm_manager import kube
from hsm_manager.gateway import pki

MAC_KEY_SECRET = "hsm-manager-mac-key"  # noqa: S105 - a Secret name


def ensure(client: kube.Kube, namespace: str) -> bytes:
    """The MAC key of this installation (32 random bytes), created once in the operator namespace."""
    data = pki.create_or_get(
        client, namespace, MAC_KEY_SECRET, "Opaque", lambda: {"key": secrets.token_bytes(32)}
    )
    return data["key"]
