"""The pool's AgentsAnswering condition: decided when the agents are asked, kept in between."""

from __future__ import annotations

import datetime

from hsm_common import models
from hsm_manager.decide import agentreach

NOW = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
EXPIRED = agentreach.Unanswered("agent-b", "its TLS certificate has expired", certificate=True)
SILENT = agentreach.Unanswered("agent-a", "does not answer (Unavailable)", certificate=False)


def test_every_agent_answering_is_true() -> None:
    condition = agentreach.condition([], [])
    assert condition.status == models.ConditionStatus.TRUE


def test_a_refused_certificate_names_the_reason_and_every_agent_in_name_order() -> None:
    condition = agentreach.condition([EXPIRED, SILENT], [])
    assert condition.status == models.ConditionStatus.FALSE
    assert condition.reason == "CertificateRefused"
    assert condition.message == (
        "agent agent-a: does not answer (Unavailable); agent agent-b: its TLS certificate has expired"
    )


def test_agents_that_only_do_not_answer_are_not_a_certificate_problem() -> None:
    assert agentreach.condition([SILENT], []).reason == "AgentsNotAnswering"


def test_a_pass_that_did_not_ask_keeps_what_the_last_one_found() -> None:
    previous = [agentreach.condition([EXPIRED], []).model_copy(update={"last_transition_time": NOW})]
    assert agentreach.condition(None, previous) == previous[0]
    assert agentreach.condition(None, []).status == models.ConditionStatus.UNKNOWN


def test_a_warning_is_given_when_the_condition_turns_false_or_says_something_new_not_again() -> None:
    fine = [agentreach.condition([], [])]
    refused = [agentreach.condition([EXPIRED], [])]
    both = [agentreach.condition([EXPIRED, SILENT], [])]
    assert agentreach.warning(fine, refused) == refused[0].message
    assert agentreach.warning(refused, refused) is None
    assert agentreach.warning(refused, both) == both[0].message
    assert agentreach.warning(refused, fine) is None
