"""The devices of an HSMDevice as the operations see them: each with its agent's client."""

from __future__ import annotations

import dataclasses

from hsm_manager.gateway import client, endpoints

from . import errors


@dataclasses.dataclass(frozen=True)
class Member:
    """One device of a group (one physical HSM and its agent)."""

    name: str
    """The agent's name, unique within the group; shown in per-device results."""
    client: client.AgentClient
    serial: str = ""
    node: str = ""


@dataclasses.dataclass(frozen=True)
class Group:
    """The reachable devices of one HSMDevice, sorted by name."""

    device: str
    namespace: str
    members: tuple[Member, ...]

    def member(self, name: str) -> Member:
        return next(member for member in self.members if member.name == name)


class Groups:
    """Groups from the endpoint directory of one namespace (the HSMDevices' namespace)."""

    def __init__(self, directory: endpoints.Directory, namespace: str) -> None:
        self.directory = directory
        self.namespace = namespace

    def devices(self) -> list[str]:
        """HSMDevices that have reachable agents."""
        return self.directory.devices(self.namespace)

    def group(self, device: str) -> Group:
        found = self.directory.endpoints(self.namespace, device)
        if not found:
            # Agents that exist but are not Ready are an outage (retry later), not an unknown device.
            if device in self.directory.deployed(self.namespace):
                raise errors.DeviceUnavailable(f"HSMDevice {device!r} has agents, but none is Ready")
            raise errors.DeviceNotFound(f"HSMDevice {device!r} has no agents", {"field": "device"})
        return Group(
            device,
            self.namespace,
            tuple(Member(e.name, self.directory.client(e), e.serial, e.node) for e in found),
        )

    def resolve(self, device: str | None) -> Group:
        """The group of device, or of the only device when device is None."""
        if device:
            return self.group(device)
        known = self.devices()
        if not known:
            raise errors.DeviceUnavailable("no HSMDevice has agents")
        if len(known) > 1:
            raise errors.AmbiguousDevice(
                f"{len(known)} HSMDevices exist ({', '.join(known)}): name one with 'device'",
                {"field": "device"},
            )
        return self.group(known[0])
