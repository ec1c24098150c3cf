"""Agent pods the kubelet refused at admission: their Deployment has replaced them; they only linger. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: The kubelet's reason for a pod it would not admit: here, one that asked for the device resource while the
#: node's device plugin was not registered (a discovery or kubelet restart). Such pods are Failed for good.
REFUSED = "UnexpectedAdmissionError"


def refused(pods: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(name, uid) of the pods a kubelet refused at admission, to delete."""
    return [
        (pod["metadata"]["name"], pod["metadata"].get("uid", ""))
        for pod in pods
        if (pod.get("status") or {}).get("phase") == "Failed"
        and (pod.get("status") or {}).get("reason") == REFUSED
        and not pod["metadata"].get("deletionTimestamp")
    ]
