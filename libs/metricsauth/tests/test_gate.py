"""The gate: bearer tokens reviewed once, their verdicts reused for a while, by the token's digest only."""

from __future__ import annotations

import pytest

from hsm_metricsauth import gate, reviews
from hsm_metricsauth.reviews import Verdict


class Reviewer:
    """Answers from verdicts by token and counts the reviews; raises Unavailable while down."""

    def __init__(self, verdicts: dict[str, Verdict]) -> None:
        self.verdicts = verdicts
        self.asked: list[str] = []
        self.down = False

    def review(self, token: str) -> Verdict:
        self.asked.append(token)
        if self.down:
            raise reviews.Unavailable("TokenReview: ConnectionRefusedError")
        return self.verdicts.get(token, Verdict.UNAUTHENTICATED)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def reviewer() -> Reviewer:
    return Reviewer({"reader": Verdict.ALLOWED, "stranger": Verdict.FORBIDDEN})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def checked(reviewer: Reviewer, clock: Clock) -> gate.Gate:
    return gate.Gate(reviewer, clock=clock)


def test_a_request_without_a_bearer_token_is_unauthenticated_without_a_review(
    checked: gate.Gate, reviewer: Reviewer
) -> None:
    for header in (None, "", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz", "reader"):
        assert checked.check(header) is Verdict.UNAUTHENTICATED
    assert reviewer.asked == []


def test_the_bearer_scheme_is_case_insensitive(checked: gate.Gate) -> None:
    assert checked.check("bearer reader") is Verdict.ALLOWED


def test_scrapes_every_15_seconds_cost_one_review_a_minute(
    checked: gate.Gate, reviewer: Reviewer, clock: Clock
) -> None:
    for _ in range(8):
        assert checked.check("Bearer reader") is Verdict.ALLOWED
        clock.now += 15
    assert reviewer.asked == ["reader", "reader"]


def test_a_refusal_is_reviewed_again_after_ten_seconds(
    checked: gate.Gate, reviewer: Reviewer, clock: Clock
) -> None:
    assert checked.check("Bearer stranger") is Verdict.FORBIDDEN
    clock.now += 9
    assert checked.check("Bearer stranger") is Verdict.FORBIDDEN
    reviewer.verdicts["stranger"] = Verdict.ALLOWED
    clock.now += 2
    assert checked.check("Bearer stranger") is Verdict.ALLOWED
    assert reviewer.asked == ["stranger", "stranger"]


def test_an_unavailable_api_server_is_asked_again_at_the_next_request(
    checked: gate.Gate, reviewer: Reviewer
) -> None:
    reviewer.down = True
    with pytest.raises(reviews.Unavailable):
        checked.check("Bearer reader")
    reviewer.down = False
    assert checked.check("Bearer reader") is Verdict.ALLOWED
    assert reviewer.asked == ["reader", "reader"]


def test_the_cache_holds_digests_never_tokens(checked: gate.Gate) -> None:
    checked.check("Bearer reader")
    assert "reader" not in repr(vars(checked))
    assert all(isinstance(key, bytes) and len(key) == 32 for key in checked._verdicts)


def test_a_flood_of_tokens_keeps_the_cache_bounded(reviewer: Reviewer, clock: Clock) -> None:
    small = gate.Gate(reviewer, clock=clock, max_entries=10)
    for n in range(100):
        small.check(f"Bearer made-up-{n}")
    assert len(small._verdicts) == 10
    small.check("Bearer reader")
    asked = len(reviewer.asked)
    small.check("Bearer reader")
    assert len(reviewer.asked) == asked
