"""Who is calling and may they: bearer tokens checked by a TokenReviewer, requests by an AccessReviewer.

Both answers are cached briefly (≤ 30 s, the issue's bound) so a burst of requests costs one review;
a revoked token or permission stops working within that time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Protocol

from hsm_common import constants
from hsm_manager import kube

from . import errors

log = logging.getLogger(__name__)

#: How long a review result is reused (seconds).
CACHE_SECONDS = 30.0
#: Denials are kept shorter so a freshly granted permission applies quickly (seconds).
DENIAL_CACHE_SECONDS = 5.0
#: Entries per cache; beyond it the cache is cleared (bounded memory under token spraying).
CACHE_SIZE = 10_000


@dataclasses.dataclass(frozen=True)
class User:
    """An authenticated caller as TokenReview reports it."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclasses.dataclass(frozen=True)
class Access:
    """One permission to check: verb on resource (in group hsm.j5t.io) in namespace, optionally one name."""

    verb: str
    resource: str
    namespace: str
    name: str = ""
    group: str = constants.GROUP


class TokenReviewer(Protocol):
    def review_token(self, token: str) -> User | None:
        """The user the token belongs to, None when the token is not valid."""


class AccessReviewer(Protocol):
    def allowed(self, user: User, access: Access) -> bool:
        """True when user may perform access."""


class KubeReviewer:
    """TokenReviewer and AccessReviewer asking the Kubernetes API (TokenReview, SubjectAccessReview)."""

    def __init__(self, client: kube.Kube) -> None:
        self._client = client

    def review_token(self, token: str) -> User | None:
        try:
            user = self._client.review_token(token)
        except kube.KubeError as error:
            raise _unavailable(error) from None
        if user is None:
            return None
        extra = tuple(sorted((key, tuple(values)) for key, values in (user.get("extra") or {}).items()))
        return User(user.get("username", ""), user.get("uid", ""), tuple(user.get("groups") or ()), extra)

    def allowed(self, user: User, access: Access) -> bool:
        attributes = {
            "group": access.group,
            "resource": access.resource,
            "verb": access.verb,
            "namespace": access.namespace,
        }
        if access.name:
            attributes["name"] = access.name
        spec: kube.Obj = {
            "user": user.username,
            "groups": list(user.groups),
            "resourceAttributes": attributes,
        }
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = {key: list(values) for key, values in user.extra}
        try:
            return self._client.review_access(spec)
        except kube.KubeError as error:
            raise _unavailable(error) from None


def _unavailable(error: kube.KubeError) -> errors.AuthBackendUnavailable:
    # A kube error names the request and its status only, never a response body that could echo a token.
    log.warning("kubernetes_review_failed", extra={"error": str(error), "status": error.status})
    return errors.AuthBackendUnavailable(f"the request could not be checked: {error}")


class _TTLCache:
    """A small thread-safe cache with a per-entry expiry."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        # gunicorn's threaded workers share one cache per process.
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[float, object]] = {}

    def get(self, key: Hashable) -> tuple[bool, object]:
        with self._lock:
            found = self._entries.get(key)
            if found is None or found[0] <= self._clock():
                return False, None
            return True, found[1]

    def put(self, key: Hashable, value: object, ttl: float) -> None:
        with self._lock:
            if len(self._entries) >= CACHE_SIZE:
                self._entries.clear()
            self._entries[key] = (self._clock() + ttl, value)


class Guard:
    """Authenticates bearer tokens and authorizes accesses through the reviewers, with caching."""

    def __init__(
        self,
        tokens: TokenReviewer,
        access: AccessReviewer,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tokens = tokens
        self._access = access
        self._users = _TTLCache(clock)
        self._decisions = _TTLCache(clock)

    def authenticate(self, authorization: str | None) -> User:
        """The user behind an Authorization header; Unauthenticated when it is missing or not valid."""
        token = _bearer(authorization)
        # The cache key is a digest so tokens never sit in memory longer than the request.
        key = hashlib.sha256(token.encode()).hexdigest()
        hit, cached = self._users.get(key)
        if hit:
            user = cached
        else:
            user = self._tokens.review_token(token)
            self._users.put(key, user, CACHE_SECONDS if user else DENIAL_CACHE_SECONDS)
        if not isinstance(user, User):
            raise errors.Unauthenticated("the bearer token is not valid")
        return user

    def allows(self, user: User, access: Access) -> bool:
        """Whether user may perform access (the review's answer, cached)."""
        key = (user, access)
        hit, cached = self._decisions.get(key)
        if hit:
            return bool(cached)
        allowed = self._access.allowed(user, access)
        self._decisions.put(key, allowed, CACHE_SECONDS if allowed else DENIAL_CACHE_SECONDS)
        return allowed

    def authorize(self, user: User, access: Access) -> None:
        """Return when user may perform access, else raise Forbidden naming what was missing."""
        if not self.allows(user, access):
            raise errors.Forbidden(
                f"user {user.username!r} may not {access.verb} {access.resource}.{access.group} "
                f"in namespace {access.namespace!r}",
                {"verb": access.verb, "resource": access.resource, "namespace": access.namespace},
            )


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise errors.Unauthenticated("missing Authorization: Bearer <token> header")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise errors.Unauthenticated("the Authorization header must be 'Bearer <token>'")
    return token
