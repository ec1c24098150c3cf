from __future__ import annotations

import datetime

from hsm_discovery import inventory, usb

T0 = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)
PICO = usb.UsbDevice("/sys/1-3", "/dev/bus/usb/001/015", "20a0", "4230", serial="S1")


def test_removed_device_stays_unavailable_with_its_removal_time() -> None:
    seen = inventory.update(inventory.Inventory(), [PICO], T0, DAY)
    later = T0 + datetime.timedelta(seconds=5)
    gone = inventory.update(seen, [], later, DAY)
    [sighting] = gone.removed()
    assert (sighting.device, sighting.available, sighting.last_seen) == (PICO, False, later)


def test_replugged_device_on_another_port_is_the_same_entry() -> None:
    seen = inventory.update(inventory.Inventory(), [PICO], T0, DAY)
    gone = inventory.update(seen, [], T0 + datetime.timedelta(seconds=1), DAY)
    moved = usb.UsbDevice("/sys/1-4", "/dev/bus/usb/001/020", "20a0", "4230", serial="S1")
    back = inventory.update(gone, [moved], T0 + datetime.timedelta(seconds=2), DAY)
    assert back.present() == [moved]
    assert back.removed() == []


def test_removed_device_is_forgotten_after_the_retention() -> None:
    seen = inventory.update(inventory.Inventory(), [PICO], T0, DAY)
    gone = inventory.update(seen, [], T0, DAY)
    assert inventory.update(gone, [], T0 + DAY, DAY).sightings == {}


def test_unchanged_device_keeps_its_first_sighting_time() -> None:
    seen = inventory.update(inventory.Inventory(), [PICO], T0, DAY)
    again = inventory.update(seen, [PICO], T0 + datetime.timedelta(seconds=30), DAY)
    assert again.sightings[PICO.identity].last_seen == T0
