"""When an HSMSecret's rolloutRestartTargets restart, and what the restart leaves in its status."""

from __future__ import annotations

import dataclasses
import datetime
import enum

from hsm_common import models

from . import conditions

CONDITION = "RolloutRestarted"
"""The status condition that says how the last restart of the targets went."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a pass does about the targets."""

    restart: bool = False
    """Restart the targets now."""
    pending: bool = False
    """A data change waits for the interval to end."""
    wait: float | None = None
    """Seconds until the waiting restart is due (pending only): the pass to run then."""


def plan(
    spec: models.HSMSecretSpec,
    previous: models.HSMSecretStatus,
    data_changed: bool,
    now: datetime.datetime,
) -> Plan:
    """Whether the targets restart in this pass.

    data_changed: this pass replaced an existing Secret's data with other data; the first creation of the
    Secret is not a change (pods starting after it read it anyway), nor is a new label or type. A change
    inside minRestartInterval of the last restart is kept pending (in status, so an operator restart keeps
    it too) and restarts the targets when the interval ends.
    """
    if not spec.rollout_restart_targets:
        return Plan()
    if not (data_changed or previous.rollout_restart_pending):
        return Plan()
    last = previous.last_rollout_restart
    if last is not None:
        left = spec.min_restart_interval - (now - last).total_seconds()
        if left > 0:
            return Plan(pending=True, wait=left)
    return Plan(restart=True)


class Failure(enum.StrEnum):
    """Why one target was not restarted; the condition's reason when any failed."""

    NOT_FOUND = "TargetNotFound"
    FORBIDDEN = "TargetForbidden"
    ERROR = "TargetRestartFailed"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One target's restart: failure is None when it was restarted."""

    target: models.RolloutRestartTarget
    failure: Failure | None = None
    detail: str = ""
    """The API's answer when it failed, for the user."""


def describe(target: models.RolloutRestartTarget) -> str:
    """How events and messages name a target: the way kubectl does (deployment/web)."""
    return f"{target.kind.value.lower()}/{target.name}"


def failure_message(outcome: Outcome) -> str:
    """A failed target in a sentence for a Warning event and the condition."""
    target = describe(outcome.target)
    if outcome.failure == Failure.NOT_FOUND:
        return f"{target} was not restarted: it does not exist in this namespace"
    if outcome.failure == Failure.FORBIDDEN:
        return (
            f"{target} was not restarted: the operator may not patch it "
            "(enable the rollout-restart RBAC component)"
        )
    return f"{target} was not restarted: {outcome.detail}"


def status(
    current: models.HSMSecretStatus,
    step: Plan,
    outcomes: list[Outcome],
    generation: int | None,
    now: datetime.datetime,
) -> models.HSMSecretStatus:
    """current with the pass's restart recorded: its time, whether one waits, and the condition."""
    if not step.restart:
        # A restart waits, or none does (any left pending by targets since removed is dropped).
        return current.model_copy(update={"rollout_restart_pending": True if step.pending else None})
    failed = [o for o in outcomes if o.failure is not None]
    restarted = [describe(o.target) for o in outcomes if o.failure is None]
    parts = [f"restarted {', '.join(restarted)}"] if restarted else []
    parts.extend(failure_message(o) for o in failed)
    condition = models.Condition(
        type=CONDITION,
        status=models.ConditionStatus.FALSE if failed else models.ConditionStatus.TRUE,
        reason=failed[0].failure.value if failed and failed[0].failure else "Restarted",
        message="; ".join(parts),
        observed_generation=generation,
    )
    return current.model_copy(
        update={
            "last_rollout_restart": now,
            "rollout_restart_pending": None,
            "conditions": conditions.set_condition(current.conditions, condition, now),
        }
    )
