"""The two reviews as the API server receives them, and what their answers mean."""

from __future__ import annotations

import json
import pathlib
import socket
import threading
from typing import Any

import pytest

from hsm_metricsauth import credentials, reviews
from hsm_metricsauth.reviews import Verdict


@pytest.fixture
def reviewer(review_api: Any) -> reviews.Reviewer:
    return reviews.Reviewer(credentials.from_kubeconfig(review_api.kubeconfig))


def test_a_token_is_reviewed_then_its_user_asked_about_get_metrics(
    review_api: Any, reviewer: reviews.Reviewer
) -> None:
    assert reviewer.review(review_api.reader) is Verdict.ALLOWED
    (token_path, token_headers, token_body), (access_path, access_headers, access_body) = review_api.reviews
    assert token_path == "/apis/authentication.k8s.io/v1/tokenreviews"
    assert token_body == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": review_api.reader},
    }
    assert access_path == "/apis/authorization.k8s.io/v1/subjectaccessreviews"
    assert access_body["kind"] == "SubjectAccessReview"
    assert access_body["spec"] == {
        "user": review_api.users[review_api.reader],
        "groups": [],
        "nonResourceAttributes": {"path": "/metrics", "verb": "get"},
    }
    # The reviews are made as the process itself, never with the caller's token.
    assert token_headers["Authorization"] == access_headers["Authorization"] == f"Bearer {review_api.own}"


def test_the_reviewed_users_uid_groups_and_extra_are_passed_on() -> None:
    user = {"username": "u", "uid": "42", "groups": ["g1", "g2"], "extra": {"scopes": ["a", "b"]}}
    api = Answering(
        [(201, {"status": {"authenticated": True, "user": user}}), (201, {"status": {"allowed": False}})]
    )
    assert reviews.Reviewer(api.credentials).review("t") is Verdict.FORBIDDEN
    assert api.bodies[1]["spec"] == {
        "user": "u",
        "uid": "42",
        "groups": ["g1", "g2"],
        "extra": {"scopes": ["a", "b"]},
        "nonResourceAttributes": {"path": "/metrics", "verb": "get"},
    }


def test_a_token_the_api_server_does_not_accept_is_unauthenticated_without_an_access_review(
    review_api: Any, reviewer: reviews.Reviewer
) -> None:
    assert reviewer.review("made-up") is Verdict.UNAUTHENTICATED
    assert len(review_api.reviews) == 1


def test_an_error_answer_is_unavailable_and_its_message_holds_no_token(
    review_api: Any, reviewer: reviews.Reviewer
) -> None:
    review_api.failing = True
    with pytest.raises(reviews.Unavailable) as raised:
        reviewer.review(review_api.reader)
    assert str(raised.value) == "TokenReview: the API server answered 500"
    assert review_api.reader not in str(raised.value)
    assert review_api.own not in str(raised.value)


def test_an_unreachable_api_server_is_unavailable() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    api = credentials.Credentials("127.0.0.1", port, None, token="own")
    with pytest.raises(reviews.Unavailable, match="ConnectionRefusedError"):
        reviews.Reviewer(api).review("t")


def test_a_silent_api_server_is_given_up_on_after_the_timeout() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        api = credentials.Credentials("127.0.0.1", silent.getsockname()[1], None, token="own")
        with pytest.raises(reviews.Unavailable, match="TimeoutError"):
            reviews.Reviewer(api, timeout=0.3).review("t")


def test_the_own_token_file_is_read_at_every_review(review_api: Any, tmp_path: pathlib.Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("an-expired-token\n")
    url = review_api.url.removeprefix("http://")
    host, port = url.split(":")
    reviewer = reviews.Reviewer(credentials.Credentials(host, int(port), None, token_file=str(token_file)))
    with pytest.raises(reviews.Unavailable, match="answered 401"):
        reviewer.review(review_api.reader)
    token_file.write_text(review_api.own + "\n")  # the kubelet wrote the rotated token
    assert reviewer.review(review_api.reader) is Verdict.ALLOWED


class Answering:
    """A one-shot API server answering each POST in turn from a list, keeping the bodies."""

    def __init__(self, answers: list[tuple[int, dict[str, Any]]]) -> None:
        self.bodies: list[dict[str, Any]] = []
        self._answers = answers
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen()
        self.credentials = credentials.Credentials(
            "127.0.0.1", self._socket.getsockname()[1], None, token="o"
        )
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        for code, answer in self._answers:
            connection, _ = self._socket.accept()
            with connection, connection.makefile("rb") as reader:
                length = 0
                while (line := reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                self.bodies.append(json.loads(reader.read(length)))
                data = json.dumps(answer).encode()
                connection.sendall(
                    f"HTTP/1.1 {code} X\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
                    + data
                )
