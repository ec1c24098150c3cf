"""GET /hsm/namespaces: the namespaces holding secrets on the HSMs that the caller may list secrets in.

Against gunicorn with two real agents (the ``api`` fixture) for what callers are told, and on the plain
functions for the bound on reviews and what a device that does not answer does to the answer.
"""

from __future__ import annotations

import pytest

from devcluster import ports
from hsm_manager.api import auth, namespaces
from hsm_manager.gateway import endpoints
from hsm_manager.mirroring import service

from .conftest import Api, b64

ROUTE = "/api/v1/hsm/namespaces"


@pytest.fixture(scope="module", autouse=True)
def _seed(api: Api) -> None:
    for path in ("team-a/picked", "team-b/picked", "team-c/gone"):
        response = api.call("POST", f"/api/v1/hsm/secrets/{path}", json={"data": {"k": b64(b"v")}})
        assert response.status_code == 201, response.text
    assert api.call("DELETE", "/api/v1/hsm/secrets/team-c/gone").status_code == 200


def test_a_caller_allowed_in_one_namespace_is_told_only_that_one(api: Api) -> None:
    response = api.call("GET", ROUTE, token="team-a")
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {
        "namespaces": ["team-a"],
        "complete": True,
        "truncated": False,
        "maxReviewed": namespaces.MAX_REVIEWED,
    }


def test_a_caller_allowed_nothing_is_told_nothing_and_is_not_refused(api: Api) -> None:
    response = api.call("GET", ROUTE, token="nobody")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["namespaces"] == []


def test_a_caller_allowed_everywhere_is_told_every_namespace_with_live_secrets(api: Api) -> None:
    listed = api.call("GET", ROUTE, token="reader").json()["data"]["namespaces"]
    assert {"team-a", "team-b"} <= set(listed)
    assert "team-c" not in listed  # its only secret is deleted
    assert listed == sorted(listed)


@pytest.mark.parametrize("token", [None, "forged"])
def test_a_caller_without_a_valid_token_is_refused(api: Api, token: str | None) -> None:
    assert api.call("GET", ROUTE, token=token).status_code == 401


def test_the_answer_is_never_kept_by_a_cache(api: Api) -> None:
    assert api.call("GET", ROUTE, token="team-a").headers["Cache-Control"] == "no-store"


class _Reviews:
    """Every token is a user; allowed: the (verb, namespace) pairs given; every review is recorded."""

    def __init__(self, allowed: set[tuple[str, str]]) -> None:
        self._allowed = allowed
        self.asked: list[auth.Access] = []

    def review_token(self, token: str) -> auth.User | None:
        return auth.User(token)

    def allowed(self, user: auth.User, access: auth.Access) -> bool:
        self.asked.append(access)
        return (access.verb, access.namespace) in self._allowed


def _held(count: int) -> namespaces.Holding:
    return namespaces.Holding([f"ns-{index:03d}" for index in range(count)], complete=True)


def test_at_most_max_reviewed_namespaces_are_reviewed_and_the_answer_says_more_were_left_out() -> None:
    reviews = _Reviews({("list", "ns-001"), ("list", "ns-100")})
    found = namespaces.visible(auth.Guard(reviews, reviews), auth.User("alice"), _held(101))
    assert found == namespaces.Visible(["ns-001"], complete=True, truncated=True)
    assert len(reviews.asked) == 1 + namespaces.MAX_REVIEWED  # every namespace at once, then one by one


def test_a_caller_allowed_in_every_namespace_costs_one_review() -> None:
    reviews = _Reviews({("list", "")})
    found = namespaces.visible(auth.Guard(reviews, reviews), auth.User("admin"), _held(101))
    assert found == namespaces.Visible(_held(101).namespaces, complete=True, truncated=False)
    assert reviews.asked == [auth.Access("list", "hsmsecrets", "")]


def test_reviews_are_reused_from_the_guards_cache() -> None:
    reviews = _Reviews({("list", "ns-001")})
    guard = auth.Guard(reviews, reviews)
    namespaces.visible(guard, auth.User("alice"), _held(3))
    asked = len(reviews.asked)
    namespaces.visible(guard, auth.User("alice"), _held(3))
    assert len(reviews.asked) == asked


def test_a_device_that_does_not_answer_makes_the_answer_incomplete_not_failed() -> None:
    silent = endpoints.AgentEndpoint("pair", "ns", "hsm-x", "hsm-x", "", f"127.0.0.1:{ports.free_port()}")
    mirror = service.Mirror(endpoints.StaticDirectory([silent], timeout=2.0), "ns")
    assert namespaces.holding(mirror) == namespaces.Holding([], complete=False)
