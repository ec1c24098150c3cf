"""Which HSMDevice an HSMSecret reads from: the known devices and the resolution rule."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any


class UnknownDevice(Exception):
    """No HSMDevice (or more than one) fits the HSMSecret's spec.device; the message says which."""


class Devices:
    """The HSMDevices the operator has seen, kept current by the HSMDevice handlers."""

    def __init__(self, operator_namespace: str) -> None:
        self._operator_namespace = operator_namespace
        # Guards _known: written by kopf handler threads, read by sync workers.
        self._lock = threading.Lock()
        self._known: set[tuple[str, str]] = set()

    def add(self, namespace: str, name: str) -> None:
        with self._lock:
            self._known.add((namespace, name))

    def learn(self, listed: Iterable[Mapping[str, Any]]) -> None:
        """Add the HSMDevices of an API server listing, except those being deleted (their delete handler
        removes them)."""
        for device in listed:
            meta = device["metadata"]
            if not meta.get("deletionTimestamp"):
                self.add(meta["namespace"], meta["name"])

    def remove(self, namespace: str, name: str) -> None:
        with self._lock:
            self._known.discard((namespace, name))

    def all(self) -> list[tuple[str, str]]:
        """Every known (namespace, name)."""
        with self._lock:
            return sorted(self._known)

    def resolve(self, namespace: str, device: str | None) -> tuple[str, str]:
        """(namespace, name) of the device an HSMSecret in namespace means.

        A named device is looked up in the HSMSecret's namespace, then in the operator's, then anywhere
        if only one namespace has it; an unnamed one is the only HSMDevice there is.
        """
        with self._lock:
            known = sorted(self._known)
        if device is None:
            if len(known) == 1:
                return known[0]
            raise UnknownDevice(
                f"spec.device is required: {len(known)} HSMDevices exist" if known else "no HSMDevice exists"
            )
        for candidate in (namespace, self._operator_namespace):
            if (candidate, device) in known:
                return candidate, device
        matches = [k for k in known if k[1] == device]
        if len(matches) == 1:
            return matches[0]
        raise UnknownDevice(
            f"HSMDevice {device!r} not found" if not matches else f"HSMDevice {device!r} is ambiguous"
        )
