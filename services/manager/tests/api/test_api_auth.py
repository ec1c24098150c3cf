"""The guard: bearer parsing, TokenReview/SubjectAccessReview results cached for at most 30 s."""

from __future__ import annotations

import pytest

from hsm_manager.api import auth, errors

ALICE = auth.User("alice", "uid-1", ("devs",))
READ = auth.Access("get", "hsmsecrets", "team-a")


class Reviews:
    """Counts the reviews asked of it; answers from a token table and an allow set."""

    def __init__(self) -> None:
        self.tokens = {"good": ALICE}
        self.allow: set[auth.Access] = {READ}
        self.token_reviews = 0
        self.access_reviews = 0

    def review_token(self, token: str) -> auth.User | None:
        self.token_reviews += 1
        return self.tokens.get(token)

    def allowed(self, user: auth.User, access: auth.Access) -> bool:
        self.access_reviews += 1
        return access in self.allow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def reviews() -> Reviews:
    return Reviews()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def guard(reviews: Reviews, clock: Clock) -> auth.Guard:
    return auth.Guard(reviews, reviews, clock)


@pytest.mark.parametrize("header", [None, "", "Basic Zm9vOmJhcg==", "Bearer", "Bearer   "])
def test_a_missing_or_malformed_header_is_unauthenticated(guard: auth.Guard, header: str | None) -> None:
    with pytest.raises(errors.Unauthenticated):
        guard.authenticate(header)


def test_an_unknown_token_is_unauthenticated(guard: auth.Guard) -> None:
    with pytest.raises(errors.Unauthenticated):
        guard.authenticate("Bearer forged")


def test_a_valid_token_is_reviewed_once_within_the_cache_time(
    guard: auth.Guard, reviews: Reviews, clock: Clock
) -> None:
    assert guard.authenticate("Bearer good") == ALICE
    clock.now += auth.CACHE_SECONDS - 1
    assert guard.authenticate("bearer good") == ALICE
    assert reviews.token_reviews == 1


def test_a_revoked_token_stops_working_after_the_cache_time(
    guard: auth.Guard, reviews: Reviews, clock: Clock
) -> None:
    guard.authenticate("Bearer good")
    del reviews.tokens["good"]
    clock.now += auth.CACHE_SECONDS
    with pytest.raises(errors.Unauthenticated):
        guard.authenticate("Bearer good")


def test_a_cache_time_of_at_most_thirty_seconds() -> None:
    assert auth.CACHE_SECONDS <= 30
    assert auth.DENIAL_CACHE_SECONDS <= auth.CACHE_SECONDS


def test_a_permitted_access_is_reviewed_once_within_the_cache_time(
    guard: auth.Guard, reviews: Reviews, clock: Clock
) -> None:
    guard.authorize(ALICE, READ)
    clock.now += 10
    guard.authorize(ALICE, READ)
    assert reviews.access_reviews == 1


def test_a_denied_access_names_verb_resource_and_namespace(guard: auth.Guard) -> None:
    with pytest.raises(errors.Forbidden) as caught:
        guard.authorize(ALICE, auth.Access("delete", "hsmsecrets", "team-b"))
    assert caught.value.details == {"verb": "delete", "resource": "hsmsecrets", "namespace": "team-b"}


def test_a_granted_permission_applies_after_the_short_denial_cache(
    guard: auth.Guard, reviews: Reviews, clock: Clock
) -> None:
    write = auth.Access("create", "hsmsecrets", "team-a")
    with pytest.raises(errors.Forbidden):
        guard.authorize(ALICE, write)
    reviews.allow.add(write)
    clock.now += auth.DENIAL_CACHE_SECONDS
    guard.authorize(ALICE, write)


def test_decisions_are_cached_per_namespace(guard: auth.Guard, reviews: Reviews) -> None:
    guard.authorize(ALICE, READ)
    with pytest.raises(errors.Forbidden):
        guard.authorize(ALICE, auth.Access("get", "hsmsecrets", "team-b"))
    assert reviews.access_reviews == 2
