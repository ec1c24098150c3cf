"""How full the devices of a pool are: agents' figures merged into the pool status, and when to warn."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hsm_common import models

CONDITION = "CapacityLow"
THRESHOLD = 0.8
"""Share of its object budget a device may use before the pool warns."""


def attach(
    devices: Sequence[models.AggregatedDevice],
    previous: Sequence[models.AggregatedDevice],
    readings: Mapping[str, models.DeviceCapacity] | None,
) -> list[models.AggregatedDevice]:
    """devices with the capacity of each: its reading (by serial), or none when its agent gave none.

    readings None means the agents were not asked this pass: every device keeps its previous figures.
    A reading equal to the previous figures keeps their observedAt, so an idle pool compares equal.
    """
    before = {d.serial_number: d.capacity for d in previous}
    placed: list[models.AggregatedDevice] = []
    for device in devices:
        old = before.get(device.serial_number)
        new = old if readings is None else readings.get(device.serial_number)
        if new is not None and old is not None and _figures(new) == _figures(old):
            new = old
        placed.append(device.model_copy(update={"capacity": new}))
    return placed


def _figures(capacity: models.DeviceCapacity) -> dict[str, object]:
    return capacity.model_dump(exclude={"observed_at"})


def low(capacity: models.DeviceCapacity) -> bool:
    """True when the device uses THRESHOLD or more of its object budget."""
    return capacity.max_objects > 0 and capacity.used_objects >= THRESHOLD * capacity.max_objects


def condition(
    devices: Sequence[models.AggregatedDevice], previous: Sequence[models.Condition]
) -> models.Condition:
    """The CapacityLow condition (without a transition time; conditions.set_condition stamps it).

    True while any device is at THRESHOLD or above, False once every available device reported and none
    is. While some available device has not reported and none that did is low, nothing new is known:
    the previous condition holds, so an agent's restart does not repeat the warning.
    """
    full = [d for d in devices if d.capacity is not None and low(d.capacity)]
    if full:
        return models.Condition(
            type=CONDITION,
            status=models.ConditionStatus.TRUE,
            reason="ObjectBudgetNearlyUsed",
            message="; ".join(_usage(d.serial_number, d.capacity) for d in full if d.capacity is not None),
        )
    unread = [d for d in devices if d.available and d.capacity is None]
    if not unread:
        return models.Condition(
            type=CONDITION,
            status=models.ConditionStatus.FALSE,
            reason="ObjectBudgetAvailable",
            message=f"every device uses less than {THRESHOLD:.0%} of its object budget",
        )
    kept = next((c for c in previous if c.type == CONDITION), None)
    if kept is not None:
        return kept
    return models.Condition(
        type=CONDITION,
        status=models.ConditionStatus.UNKNOWN,
        reason="CapacityNotReported",
        message=f"{len(unread)} available devices have not reported their capacity yet",
    )


def _usage(serial: str, capacity: models.DeviceCapacity) -> str:
    share = capacity.used_objects / capacity.max_objects
    return (
        f"device {serial} uses {capacity.used_objects} of {capacity.max_objects} objects ({share:.0%}), "
        f"{capacity.free_objects} free"
    )


def warning(previous: Sequence[models.Condition], current: Sequence[models.Condition]) -> str | None:
    """The message of a CapacityLow warning when the condition has just turned True, else None."""
    before = next((c for c in previous if c.type == CONDITION), None)
    now = next((c for c in current if c.type == CONDITION), None)
    if now is None or now.status != models.ConditionStatus.TRUE:
        return None
    if before is not None and before.status == models.ConditionStatus.TRUE:
        return None
    return now.message
