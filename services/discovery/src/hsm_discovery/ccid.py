"""The libccid reader allowlist: USB IDs from the CCID driver bundle's Info.plist."""

from __future__ import annotations

import logging
import pathlib
import plistlib
import xml.parsers.expat
from collections.abc import Sequence
from typing import Final

from . import usb

log = logging.getLogger(__name__)

#: Debian's path first, then the multiarch and /usr/local variants other builds use.
DEFAULT_PATHS: Final = (
    pathlib.Path("/usr/lib/pcsc/drivers/ifd-ccid.bundle/Contents/Info.plist"),
    pathlib.Path("/usr/lib/x86_64-linux-gnu/pcsc/drivers/ifd-ccid.bundle/Contents/Info.plist"),
    pathlib.Path("/usr/lib/aarch64-linux-gnu/pcsc/drivers/ifd-ccid.bundle/Contents/Info.plist"),
    pathlib.Path("/usr/lib64/pcsc/drivers/ifd-ccid.bundle/Contents/Info.plist"),
    pathlib.Path("/usr/local/lib/pcsc/drivers/ifd-ccid.bundle/Contents/Info.plist"),
)


def parse(data: bytes) -> frozenset[tuple[str, str]]:
    """The (vendor, product) pairs an Info.plist lists; raises ValueError when it is not a CCID plist."""
    try:
        plist = plistlib.loads(data)
    except (plistlib.InvalidFileException, ValueError, xml.parsers.expat.ExpatError) as err:
        raise ValueError(f"not a property list: {err}") from err
    vendors = plist.get("ifdVendorID") if isinstance(plist, dict) else None
    products = plist.get("ifdProductID") if isinstance(plist, dict) else None
    if not isinstance(vendors, list) or not isinstance(products, list) or len(vendors) != len(products):
        raise ValueError("ifdVendorID and ifdProductID must be arrays of the same length")
    return frozenset(
        (usb.normalize_id(str(v)), usb.normalize_id(str(p))) for v, p in zip(vendors, products, strict=True)
    )


def load(paths: Sequence[pathlib.Path] = DEFAULT_PATHS) -> frozenset[tuple[str, str]]:
    """The allowlist of the first readable Info.plist among paths; empty (and logged) when there is none."""
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        try:
            allowed = parse(data)
        except ValueError as err:
            log.warning("ccid_plist_invalid", extra={"path": str(path), "error": str(err)})
            continue
        log.info("ccid_plist_loaded", extra={"path": str(path), "readers": len(allowed)})
        return allowed
    log.warning("ccid_plist_missing", extra={"paths": [str(p) for p in paths]})
    return frozenset()
