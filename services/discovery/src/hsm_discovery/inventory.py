"""What this node has seen over time: present devices and recently removed ones, as immutable snapshots."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable

from . import usb


@dataclasses.dataclass(frozen=True)
class Sighting:
    device: usb.UsbDevice
    available: bool
    last_seen: datetime.datetime
    """For a removed device, when it was last present; for a present one, when it last appeared."""


@dataclasses.dataclass(frozen=True)
class Inventory:
    """Sightings keyed by device identity (serial-based when there is one, so re-plugging keeps the key)."""

    sightings: dict[str, Sighting] = dataclasses.field(default_factory=dict)

    def present(self) -> list[usb.UsbDevice]:
        return [s.device for s in self.sightings.values() if s.available]

    def removed(self) -> list[Sighting]:
        return [s for s in self.sightings.values() if not s.available]


def update(
    previous: Inventory,
    scanned: Iterable[usb.UsbDevice],
    now: datetime.datetime,
    forget_after: datetime.timedelta,
) -> Inventory:
    """The inventory after a full scan found scanned at now.

    Devices missing from the scan stay as unavailable with the time they were last known present, so the
    pool can apply its grace period; after forget_after they are dropped to keep the report bounded.
    """
    sightings: dict[str, Sighting] = {}
    for device in scanned:
        before = previous.sightings.get(device.identity)
        if before is not None and before.available and before.device == device:
            sightings[device.identity] = before
        else:
            sightings[device.identity] = Sighting(device=device, available=True, last_seen=now)
    for key, before in previous.sightings.items():
        if key in sightings:
            continue
        if before.available:
            sightings[key] = Sighting(device=before.device, available=False, last_seen=now)
        elif now - before.last_seen < forget_after:
            sightings[key] = before
    return Inventory(sightings=sightings)
