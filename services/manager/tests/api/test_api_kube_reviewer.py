"""auth.KubeReviewer: TokenReview and SubjectAccessReview answers as users and decisions, failures as 503."""

from __future__ import annotations

from typing import Any

import pytest

from hsm_manager import kube
from hsm_manager.api import auth, errors


class Reviews:
    """The two review calls of hsm_manager.kube.Kube, answered from fields."""

    def __init__(self) -> None:
        self.user: kube.Obj | None = None
        self.allow = False
        self.failure: kube.KubeError | None = None
        self.specs: list[kube.Obj] = []

    def review_token(self, token: str) -> kube.Obj | None:
        if self.failure:
            raise self.failure
        return self.user

    def review_access(self, spec: kube.Obj) -> bool:
        if self.failure:
            raise self.failure
        self.specs.append(spec)
        return self.allow


@pytest.fixture
def reviews() -> Reviews:
    return Reviews()


@pytest.fixture
def reviewer(reviews: Reviews) -> auth.KubeReviewer:
    client: Any = reviews
    return auth.KubeReviewer(client)


def test_a_reviewed_token_becomes_the_user_with_groups_and_extra(
    reviews: Reviews, reviewer: auth.KubeReviewer
) -> None:
    reviews.user = {"username": "alice", "uid": "1", "groups": ["devs"], "extra": {"b": ["2"], "a": ["1"]}}
    assert reviewer.review_token("t") == auth.User("alice", "1", ("devs",), (("a", ("1",)), ("b", ("2",))))


def test_a_token_kubernetes_rejects_has_no_user(reviewer: auth.KubeReviewer) -> None:
    assert reviewer.review_token("t") is None


def test_the_access_review_asks_about_the_user_and_the_resource(
    reviews: Reviews, reviewer: auth.KubeReviewer
) -> None:
    reviews.allow = True
    user = auth.User("alice", "1", ("devs",), (("a", ("1",)),))
    assert reviewer.allowed(user, auth.Access("get", "hsmsecrets", "team-a", "db"))
    assert reviews.specs == [
        {
            "user": "alice",
            "uid": "1",
            "groups": ["devs"],
            "extra": {"a": ["1"]},
            "resourceAttributes": {
                "group": "hsm.j5t.io",
                "resource": "hsmsecrets",
                "verb": "get",
                "namespace": "team-a",
                "name": "db",
            },
        }
    ]


@pytest.mark.parametrize(
    "failure",
    [
        kube.KubeError("TokenReview: 500 Internal Server Error", 500),
        kube.KubeError("TokenReview: MaxRetryError"),
    ],
    ids=["refused", "unreachable"],
)
def test_a_review_that_fails_reports_the_auth_backend_unavailable(
    reviews: Reviews, reviewer: auth.KubeReviewer, failure: kube.KubeError
) -> None:
    reviews.failure = failure
    with pytest.raises(errors.AuthBackendUnavailable):
        reviewer.review_token("t")
    with pytest.raises(errors.AuthBackendUnavailable):
        reviewer.allowed(auth.User("alice"), auth.Access("get", "hsmsecrets", "team-a"))
