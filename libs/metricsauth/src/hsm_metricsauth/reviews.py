"""TokenReview and SubjectAccessReview: whose token it is, and whether they may get /metrics.

Two POSTs over the standard library's ``http.client`` rather than the ``kubernetes`` package: every
service serves metrics, the agent too, and an agent runs once per HSM, so its memory is paid per device;
the ``kubernetes`` client adds some 20 MiB and 1.5 s of import (measured: ``import kubernetes.client``)
to a process that otherwise never talks to the API server, and the import-linter contract keeps that
client in each service's ``kube`` module.
"""

from __future__ import annotations

import dataclasses
import enum
import http.client
import json
import ssl
from typing import Any

from . import credentials

#: What the reviewed user must be allowed: the nonResourceURL rule of kube-rbac-proxy and controller-runtime.
PATH = "/metrics"
VERB = "get"
#: Seconds one review call may take, connecting included.
TIMEOUT = 5.0


class Verdict(enum.Enum):
    """What a request's token is worth."""

    ALLOWED = "allowed"
    UNAUTHENTICATED = "unauthenticated"
    """No token, or one the API server does not accept."""
    FORBIDDEN = "forbidden"
    """A valid token whose user may not get /metrics."""


class Unavailable(Exception):
    """The API server could not answer (the message names the review and the cause, never the token)."""


@dataclasses.dataclass(frozen=True)
class User:
    """The user a TokenReview names."""

    name: str
    uid: str
    groups: tuple[str, ...]
    extra: dict[str, list[str]]


class Reviewer:
    """TokenReview then SubjectAccessReview, as the process's own ServiceAccount (or kubeconfig user)."""

    def __init__(self, api: credentials.Credentials, timeout: float = TIMEOUT) -> None:
        self._api = api
        self._timeout = timeout

    def review(self, token: str) -> Verdict:
        """What token may do here; Unavailable when the API server cannot tell."""
        user = self._authenticate(token)
        if user is None:
            return Verdict.UNAUTHENTICATED
        return Verdict.ALLOWED if self._authorize(user) else Verdict.FORBIDDEN

    def _authenticate(self, token: str) -> User | None:
        status = self._post(
            "TokenReview",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}},
        )
        if not status.get("authenticated"):
            return None
        user = status.get("user") or {}
        return User(
            user.get("username", ""),
            user.get("uid", ""),
            tuple(user.get("groups") or ()),
            {key: list(values) for key, values in (user.get("extra") or {}).items()},
        )

    def _authorize(self, user: User) -> bool:
        spec: dict[str, Any] = {
            "user": user.name,
            "groups": list(user.groups),
            "nonResourceAttributes": {"path": PATH, "verb": VERB},
        }
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = user.extra
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        status = self._post("SubjectAccessReview", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body)
        return bool(status.get("allowed"))

    def _connection(self) -> http.client.HTTPConnection:
        api = self._api
        if api.tls is None:
            return http.client.HTTPConnection(api.host, api.port, timeout=self._timeout)
        return http.client.HTTPSConnection(api.host, api.port, timeout=self._timeout, context=api.tls)

    def _post(self, kind: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The created review's status. A fresh connection each time: reviews are rare (the gate caches
        their verdicts), and nothing is kept open to go stale between scrapes."""
        try:
            own = self._api.bearer()
        except credentials.Missing as error:
            raise Unavailable(f"{kind}: {error}") from None
        headers = {
            "Authorization": f"Bearer {own}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        connection = self._connection()
        try:
            connection.request("POST", path, json.dumps(body), headers)
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException, ssl.SSLError) as error:
            raise Unavailable(f"{kind}: {type(error).__name__}") from None
        finally:
            connection.close()
        if response.status not in (200, 201):
            # The body is not repeated: an error could echo what was sent.
            raise Unavailable(f"{kind}: the API server answered {response.status}")
        try:
            found = json.loads(payload).get("status") or {}
        except (ValueError, AttributeError):
            raise Unavailable(f"{kind}: the answer is not a review") from None
        if not isinstance(found, dict):
            raise Unavailable(f"{kind}: the answer is not a review")
        return found
