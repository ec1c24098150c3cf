"""Device operations of a group: what each token says, its health, and PIN changes across all of them."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from hsm_manager import kube
from hsm_manager.decide import model
from hsm_manager.gateway import errors as agent_errors

from . import errors, groups

log = logging.getLogger(__name__)


class PinStore(Protocol):
    def update_pin(self, namespace: str, device: str, new_pin: str) -> None:
        """Store new_pin where the device's agents read their PIN (the HSMDevice's PIN Secret)."""


T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Answer(Generic[T]):
    """One device's answer, or why it gave none."""

    member: groups.Member
    value: T | None
    error: agent_errors.AgentCallError | None = None


def info(group: groups.Group) -> list[Answer[model.DeviceInfo]]:
    """What every device's agent says of its token (an unreachable one is reported, not fatal)."""
    return [_ask(member, member.client.info) for member in group.members]


def health(group: groups.Group) -> list[Answer[model.Health]]:
    return [_ask(member, member.client.health) for member in group.members]


def _ask(member: groups.Member, call: Callable[[], T]) -> Answer[T]:
    try:
        return Answer(member, call())
    except agent_errors.AgentCallError as error:
        return Answer(member, None, error)


def change_pin(group: groups.Group, pins: PinStore, old_pin: str, new_pin: str) -> list[str]:
    """Change the PIN on every device of the group, then the PIN Secret; all or nothing.

    When one device refuses, the devices already changed are set back to the old PIN, so the group
    never ends up with two PINs. Neither PIN appears in results, logs or errors. Returns the devices.
    """
    if not group.members:
        raise errors.DeviceUnavailable(f"HSMDevice {group.device!r} has no available agent")
    for member in group.members:
        # Refuse up front when a device is unreachable: it would keep the old PIN while the Secret moves on.
        try:
            member.client.health(wait=True)
        except agent_errors.AgentCallError as error:
            raise errors.DeviceUnavailable(
                f"{member.name} is unreachable; no PIN was changed: {error.message}",
                {"device": member.name},
            ) from None
    changed: list[groups.Member] = []
    for member in group.members:
        try:
            member.client.change_pin(old_pin, new_pin)
        except agent_errors.AgentCallError as error:
            rolled_back = _roll_back(changed, old_pin, new_pin)
            kind = _PIN_ERRORS.get(type(error), errors.DeviceUnavailable)
            raise kind(
                f"{member.name} refused the PIN change: {error.message}",
                {"device": member.name, "rolledBack": rolled_back},
            ) from None
        changed.append(member)
    try:
        pins.update_pin(group.namespace, group.device, new_pin)
    except kube.KubeError as error:
        # Agents re-read the Secret when they log in again: devices must keep the PIN it holds.
        rolled_back = _roll_back(changed, old_pin, new_pin)
        kind = errors.DeviceNotFound if isinstance(error, kube.NotFound) else errors.DeviceUnavailable
        raise kind(f"the PIN Secret was not updated: {error}", {"rolledBack": rolled_back}) from None
    return [member.name for member in changed]


_PIN_ERRORS: dict[type[agent_errors.AgentCallError], type[errors.MirrorError]] = {
    agent_errors.PinRejected: errors.PinRejected,
    agent_errors.InvalidArgument: errors.InvalidArgument,
}


def _roll_back(changed: list[groups.Member], old_pin: str, new_pin: str) -> list[str]:
    done: list[str] = []
    for member in changed:
        try:
            member.client.change_pin(new_pin, old_pin)
        except agent_errors.AgentCallError as error:
            log.error("pin_rollback_failed", extra={"device": member.name, "error": error.message})
        else:
            done.append(member.name)
    return done
