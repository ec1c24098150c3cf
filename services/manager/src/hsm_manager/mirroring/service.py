"""The mirroring service of one namespace's HSMDevices: groups of devices, and the repair of a group."""

from __future__ import annotations

from . import groups, repair


class Mirror(groups.Groups):
    """Finds device groups (see groups.Groups) and repairs them; reads and writes take a group."""

    def repair(self, device: str, prefix: str = "", observe: repair.Observer | None = None) -> repair.Report:
        """Make every reachable device of device hold the newest copy of every path under prefix."""
        return repair.repair_group(self.group(device), prefix, observe)
