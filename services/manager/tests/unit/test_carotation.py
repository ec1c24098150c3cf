"""The CA rotation's state machine: each phase is left only on the facts it needs, and only forward."""

from __future__ import annotations

import datetime

import pytest

from hsm_manager.decide import carotation

P, S = carotation.Phase, carotation.Step
ALL = carotation.Observed(agents_trust_next=True, agents_serve_signing=True, clients_settled=True)
NONE = carotation.Observed(agents_trust_next=False, agents_serve_signing=False, clients_settled=False)
START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
END = START + datetime.timedelta(days=3000)


def observed(**facts: bool) -> carotation.Observed:
    return carotation.Observed(**{**vars(NONE), **facts})


def test_a_stable_ca_with_time_left_waits_whatever_is_observed() -> None:
    assert carotation.step(P.STABLE, False, ALL) is S.WAIT


def test_a_stable_ca_that_is_due_begins_a_rotation_with_nothing_observed() -> None:
    assert carotation.step(P.STABLE, True, NONE) is S.BEGIN


def test_trusting_promotes_once_every_agent_trusts_the_next_ca_and_the_clients_settled() -> None:
    assert (
        carotation.step(P.TRUSTING, False, observed(agents_trust_next=True, clients_settled=True))
        is S.PROMOTE
    )


@pytest.mark.parametrize(
    "facts",
    [
        {"agents_trust_next": True},
        {"clients_settled": True},
        {"agents_serve_signing": True, "clients_settled": True},
    ],
)
def test_trusting_waits_while_a_fact_it_needs_is_missing(facts: dict[str, bool]) -> None:
    assert carotation.step(P.TRUSTING, True, observed(**facts)) is S.WAIT


def test_issuing_drops_the_old_ca_once_every_agent_serves_the_new_one_and_the_clients_settled() -> None:
    assert (
        carotation.step(P.ISSUING, False, observed(agents_serve_signing=True, clients_settled=True)) is S.DROP
    )


@pytest.mark.parametrize(
    "facts",
    [
        {"agents_serve_signing": True},
        {"clients_settled": True},
        {"agents_trust_next": True, "clients_settled": True},
    ],
)
def test_issuing_waits_while_a_fact_it_needs_is_missing(facts: dict[str, bool]) -> None:
    assert carotation.step(P.ISSUING, True, observed(**facts)) is S.WAIT


def test_a_ca_is_due_once_less_than_the_fraction_of_its_life_is_left() -> None:
    third = (END - START) / 3
    assert not carotation.due(START, END, END - third - datetime.timedelta(seconds=1), 1 / 3)
    assert carotation.due(START, END, END - third + datetime.timedelta(seconds=1), 1 / 3)
