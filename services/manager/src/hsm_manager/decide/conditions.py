"""Kubernetes-style conditions that keep their transition time while their status holds."""

from __future__ import annotations

import datetime

from hsm_common import models

READY = "Ready"


def set_condition(
    existing: list[models.Condition], new: models.Condition, now: datetime.datetime
) -> list[models.Condition]:
    """existing with new replacing the condition of the same type.

    lastTransitionTime moves only when the status flips, so an unchanged condition compares equal and a
    status that did not change is not rewritten.
    """
    previous = next((c for c in existing if c.type == new.type), None)
    if previous is not None and previous.status == new.status and previous.last_transition_time is not None:
        stamped = new.model_copy(update={"last_transition_time": previous.last_transition_time})
    else:
        stamped = new.model_copy(update={"last_transition_time": now})
    return [stamped if c.type == new.type else c for c in existing] if previous else [*existing, stamped]


def ready(status: bool, reason: str, message: str, generation: int | None = None) -> models.Condition:
    """A Ready condition (without a transition time; set_condition stamps it)."""
    return models.Condition(
        type=READY,
        status=models.ConditionStatus.TRUE if status else models.ConditionStatus.FALSE,
        reason=reason,
        message=message,
        observed_generation=generation,
    )
