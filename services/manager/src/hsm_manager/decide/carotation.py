"""When the manager's CA moves on: a rotation in three phases, each left only on observed facts.

Stable ─(CA due)→ Trusting ─(every agent accepts the next CA, every client trusts it)→ Issuing
       ─(every agent serves a leaf of the new CA, every client holds one)→ Stable (the old CA dropped).

Trusting: the next CA joins every trust bundle (agents' client CA, clients' trust store) while the current
one still signs; nobody yet presents a certificate of the next CA, so nothing can fail. Issuing: the next CA
signs, every leaf is re-issued from it; both stay trusted, so old and new leaves meet trust everywhere.
Only when nobody presents an old leaf any more does the old CA leave the bundles.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum


class Phase(enum.StrEnum):
    STABLE = "Stable"
    """One CA signs and is trusted."""
    TRUSTING = "Trusting"
    """A next CA is trusted beside the current one, which still signs."""
    ISSUING = "Issuing"
    """The new CA signs; the previous one is still trusted until nobody presents its leaves."""


class Step(enum.StrEnum):
    WAIT = "Wait"
    BEGIN = "Begin"
    """Make the next CA and add it to every trust bundle."""
    PROMOTE = "Promote"
    """Sign with the next CA from now on (every leaf is re-issued), keep the old one trusted."""
    DROP = "Drop"
    """Forget the old CA: the bundles hold the new one only."""


@dataclasses.dataclass(frozen=True)
class Observed:
    """What the owner saw this round; each fact is about every agent and every client."""

    agents_trust_next: bool
    """Every agent's Secret holds the bundle, and every Ready agent accepted a client leaf of the next CA."""
    agents_serve_signing: bool
    """Every agent's Secret holds a leaf of the signing CA, and every Ready agent served one (a handshake
    trusting only the signing CA)."""
    clients_settled: bool
    """The clients' Secret holds what the phase wants, written so long ago that every client re-read it."""


def due(
    not_before: datetime.datetime, not_after: datetime.datetime, now: datetime.datetime, fraction: float
) -> bool:
    """True once less than fraction of the CA's lifetime is left."""
    return not_after - now < (not_after - not_before) * fraction


def step(phase: Phase, ca_due: bool, observed: Observed) -> Step:
    """The one step to take now (WAIT while the facts the next phase needs are not all observed)."""
    if phase is Phase.STABLE:
        return Step.BEGIN if ca_due else Step.WAIT
    if phase is Phase.TRUSTING:
        return Step.PROMOTE if observed.agents_trust_next and observed.clients_settled else Step.WAIT
    return Step.DROP if observed.agents_serve_signing and observed.clients_settled else Step.WAIT
