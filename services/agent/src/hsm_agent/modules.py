"""What the agent knows of PKCS#11 modules by their file name."""

from __future__ import annotations

import os


def is_opensc(library_path: str) -> bool:
    """True for OpenSC's module: it reaches SmartCard-HSM, Pico HSM and Nitrokey HSM tokens through pcscd,
    and its PKCS#11 layer exposes at most 128 objects per token."""
    return "opensc" in os.path.basename(library_path).lower()
