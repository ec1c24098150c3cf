"""Built-in table of HSMs that autoDiscovery matches even when libccid does not list them."""

from __future__ import annotations

import dataclasses
from typing import Final


@dataclasses.dataclass(frozen=True)
class KnownHsm:
    name: str
    ccid: bool
    """False when the device needs its own driver instead of pcscd/libccid."""


KNOWN: Final[dict[tuple[str, str], KnownHsm]] = {
    ("2e8a", "10fd"): KnownHsm("Pico HSM", ccid=True),
    # Pico HSM firmware can present the Nitrokey HSM 2 IDs; both are the same CCID SmartCard-HSM applet.
    ("20a0", "4230"): KnownHsm("Nitrokey HSM 2 / Pico HSM", ccid=True),
    ("04e6", "5817"): KnownHsm("SmartCard-HSM", ccid=True),
    ("04e6", "5816"): KnownHsm("SmartCard-HSM", ccid=True),
    ("1050", "0030"): KnownHsm("YubiHSM 2", ccid=False),
}


def is_ccid(ids: tuple[str, str]) -> bool:
    """Whether a device with these IDs talks CCID (unknown devices are assumed to)."""
    known = KNOWN.get(ids)
    return known is None or known.ccid
