"""Whether every Ready agent of a device answers the manager: the pool's AgentsAnswering condition.

An agent whose certificate the manager refuses (expired, not yet valid, signed by another CA, issued for
another agent) fails the sync of every HSMSecret of its device; this condition says so once, on the pool,
with the agent's name and the reason. It is decided on the periodic pass that asks each Ready agent how
full its token is; the passes in between keep what that one found.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from hsm_common import models

CONDITION = "AgentsAnswering"


@dataclasses.dataclass(frozen=True)
class Unanswered:
    """A Ready agent that did not answer this pass."""

    agent: str
    reason: str
    """Why, in words a user can act on (never a value or a PIN)."""
    certificate: bool
    """The manager refused the agent's certificate at the handshake."""


def condition(
    unanswered: Sequence[Unanswered] | None, previous: Sequence[models.Condition]
) -> models.Condition:
    """The AgentsAnswering condition (without a transition time; conditions.set_condition stamps it).

    unanswered None means the agents were not asked this pass: the previous condition holds.
    """
    if unanswered is None:
        kept = next((c for c in previous if c.type == CONDITION), None)
        return kept or models.Condition(
            type=CONDITION,
            status=models.ConditionStatus.UNKNOWN,
            reason="NotAskedYet",
            message="the agents have not been asked yet",
        )
    if not unanswered:
        return models.Condition(
            type=CONDITION,
            status=models.ConditionStatus.TRUE,
            reason="AgentsAnswer",
            message="every Ready agent answers",
        )
    refused = any(u.certificate for u in unanswered)
    return models.Condition(
        type=CONDITION,
        status=models.ConditionStatus.FALSE,
        reason="CertificateRefused" if refused else "AgentsNotAnswering",
        message="; ".join(f"agent {u.agent}: {u.reason}" for u in sorted(unanswered, key=lambda u: u.agent)),
    )


def warning(previous: Sequence[models.Condition], current: Sequence[models.Condition]) -> str | None:
    """The message of a warning event when the condition has just turned False or says something new."""
    before = next((c for c in previous if c.type == CONDITION), None)
    now = next((c for c in current if c.type == CONDITION), None)
    if now is None or now.status != models.ConditionStatus.FALSE:
        return None
    if before is not None and before.status == now.status and before.message == now.message:
        return None
    return now.message
