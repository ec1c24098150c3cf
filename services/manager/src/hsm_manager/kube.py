"""The manager's only door to the Kubernetes API: plain dicts in and out, three errors.

Both processes load their client here, by one rule (``Kube.connect``): an explicit kubeconfig file when
given, else the pod's ServiceAccount when running in a cluster, else the default kubeconfig ($KUBECONFIG or
~/.kube/config), so a developer's shell and a pod need no flag and a test can point anywhere.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import kubernetes
import urllib3

from hsm_common import constants, models

Obj = dict[str, Any]

#: (connect, read) seconds of one call; watches are kopf's, so nothing here waits longer.
_TIMEOUT = (5.0, 30.0)
#: Objects per page of a full list (the API server's own default page size for informers).
_PAGE = 500
#: Seconds the bearer token header is reused before the credentials are asked again.
_AUTH_SECONDS = 10.0
#: Bytes read from a watch stream at a time.
_CHUNK = 65536
#: A review holds up an API request: past this the API answers that its backend is unavailable.
_REVIEW_TIMEOUT = 5.0
#: A request the API server turned away unprocessed (429 or 503 with Retry-After: while it starts, or when
#: its priority and fairness sheds load) is sent again after the wait it names, up to three times, whatever
#: the verb; anything else (a refused connection, a broken read) fails at once.
_RETRY = urllib3.Retry(
    total=3,
    connect=0,
    read=0,
    redirect=0,
    other=0,
    status=3,
    allowed_methods=None,
    respect_retry_after_header=True,
    raise_on_status=False,
)


class KubeError(Exception):
    """A Kubernetes API call failed; status is the HTTP status (0 when none came back)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class NotFound(KubeError):
    """The object does not exist."""


class Conflict(KubeError):
    """The object already exists, or changed since it was read (409)."""


class Gone(KubeError):
    """A watch asked for a resourceVersion the API server no longer keeps (410): list again."""


def _error(status: int, reason: str, what: str) -> KubeError:
    # The status and reason only: response bodies of Secret calls may echo data.
    message = f"{what}: {status} {reason}"
    if status == 404:
        return NotFound(message, 404)
    if status == 409:
        return Conflict(message, 409)
    if status == 410:
        return Gone(message, 410)
    return KubeError(message, status)


#: kind -> (API group path, plural) of every kind the manager reads or writes.
_KINDS = {
    "Secret": ("/api/v1", "secrets"),
    "ConfigMap": ("/api/v1", "configmaps"),
    "Pod": ("/api/v1", "pods"),
    "ServiceAccount": ("/api/v1", "serviceaccounts"),
    "Event": ("/api/v1", "events"),
    "Node": ("/api/v1", "nodes"),
    "Deployment": ("/apis/apps/v1", "deployments"),
    "StatefulSet": ("/apis/apps/v1", "statefulsets"),
    "DaemonSet": ("/apis/apps/v1", "daemonsets"),
    constants.KIND_SECRET: (f"/apis/{constants.GROUP}/{constants.VERSION}", constants.PLURAL_SECRET),
    constants.KIND_DEVICE: (f"/apis/{constants.GROUP}/{constants.VERSION}", constants.PLURAL_DEVICE),
    constants.KIND_POOL: (f"/apis/{constants.GROUP}/{constants.VERSION}", constants.PLURAL_POOL),
}

_WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")


def _collection(kind: str, namespace: str | None) -> str:
    """The path of kind's objects in namespace (in all namespaces, or cluster-scoped, when None)."""
    try:
        group, plural = _KINDS[kind]
    except KeyError:
        raise ValueError(f"{kind} is not a kind the manager reads or writes") from None
    if namespace:
        return f"{group}/namespaces/{quote(namespace, safe='')}/{plural}"
    return f"{group}/{plural}"


def _object(kind: str, namespace: str, name: str) -> str:
    return f"{_collection(kind, namespace)}/{quote(name, safe='')}"


def _timeout(timeout: float | tuple[float, float]) -> urllib3.Timeout:
    if isinstance(timeout, tuple):
        return urllib3.Timeout(connect=timeout[0], read=timeout[1])
    return urllib3.Timeout(total=timeout)


class Kube:
    """Typed-enough access to the few resources the manager touches.

    Requests go straight through the client's connection pool with its credentials: the client's generated
    API classes cost seconds of CPU to import and more validating arguments than a request takes (by py-spy,
    13% of the operator's CPU during a cold convergence against 28% for the requests themselves). The pool
    is thread-safe; sync workers, kopf's handler threads and gunicorn's threads share it.
    """

    def __init__(self, api_client: kubernetes.client.ApiClient) -> None:
        self._api_client = api_client
        self._api_pool: Any = None
        self._prefix = urlsplit(api_client.configuration.host).path.rstrip("/")
        self._auth: dict[str, str] = {}
        self._auth_until = 0.0

    @classmethod
    def connect(cls, kubeconfig: str = "") -> Kube:
        """A client by the module's loading rule: kubeconfig if given, else in-cluster, else the default."""
        configuration = kubernetes.client.Configuration()
        if kubeconfig:
            kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, client_configuration=configuration
            )
        else:
            try:
                kubernetes.config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration
                )
            except kubernetes.config.ConfigException:
                kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration
                )
        configuration.connection_pool_maxsize = 16
        return cls(kubernetes.client.ApiClient(configuration))

    @property
    def host(self) -> str:
        """The API server's URL, as the loading rule found it."""
        host: str = self._api_client.configuration.host
        return host

    def _open(
        self,
        method: str,
        path: str,
        what: str,
        body: Obj | None = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
        timeout: float | tuple[float, float] = _TIMEOUT,
        stream: bool = False,
    ) -> Any:
        """The response to one request (its body unread when stream); KubeError unless it succeeded."""
        headers = {"Accept": "application/json", **self._auth_header()}
        if body is not None:
            headers["Content-Type"] = content_type
        url = self._prefix + path + (f"?{urlencode(query)}" if query else "")
        try:
            response = self._pool().urlopen(
                method,
                url,
                body=None if body is None else json.dumps(body),
                headers=headers,
                timeout=_timeout(timeout),
                retries=_RETRY,
                preload_content=not stream,
            )
        except Exception as exc:  # urllib3 and socket errors: the API server is unreachable
            raise KubeError(f"{what}: the Kubernetes API is unreachable ({type(exc).__name__})") from None
        if response.status >= 300:
            if stream:
                response.drain_conn()
                response.release_conn()
            raise _error(response.status, response.reason or "", what)
        return response

    def _request(
        self,
        method: str,
        path: str,
        what: str,
        body: Obj | None = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
        timeout: float | tuple[float, float] = _TIMEOUT,
    ) -> Obj:
        """One request's JSON answer ({} when it has no body)."""
        data = self._open(method, path, what, body, query, content_type, timeout).data
        return json.loads(data) if data else {}

    def _pool(self) -> Any:
        """The API server's connection pool (the client's own; fetched again should it have been closed)."""
        if self._api_pool is None or self._api_pool.pool is None:
            config = self._api_client.configuration
            self._api_pool = self._api_client.rest_client.pool_manager.connection_from_url(config.host)
        return self._api_pool

    def _auth_header(self) -> dict[str, str]:
        """The bearer token header, if the credentials have one; re-read every few seconds, since reading
        runs the credentials' refresh hook (in a pod, the projected token file is re-read)."""
        now = time.monotonic()
        if now >= self._auth_until:
            bearer = self._api_client.configuration.auth_settings().get("BearerToken") or {}
            self._auth = {bearer["key"]: bearer["value"]} if bearer.get("value") else {}
            self._auth_until = now + _AUTH_SECONDS
        return self._auth

    # ------------------------------------------------------------ single objects

    def get(self, kind: str, namespace: str, name: str) -> Obj:
        """Read one object of kind (Secret, ConfigMap, Pod, ServiceAccount, Deployment, DaemonSet, custom)."""
        return self._request("GET", _object(kind, namespace, name), f"get {kind} {namespace}/{name}")

    def create(self, obj: Obj) -> Obj:
        """Create obj; Conflict when it exists."""
        kind, meta = obj["kind"], obj["metadata"]
        what = f"create {kind} {meta['namespace']}/{meta['name']}"
        return self._request("POST", _collection(kind, meta["namespace"]), what, obj)

    def replace(self, obj: Obj) -> Obj:
        """Replace obj (with its resourceVersion, if set: Conflict when it changed meanwhile)."""
        kind, namespace, name = obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"]
        return self._request("PUT", _object(kind, namespace, name), f"replace {kind} {namespace}/{name}", obj)

    def delete(self, kind: str, namespace: str, name: str, uid: str | None = None) -> None:
        """Delete an object (its dependents are collected in the background); absent is fine.

        With uid, only that incarnation is deleted (a precondition), so a fresh replacement survives.
        """
        body: Obj = {"propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            self._request("DELETE", _object(kind, namespace, name), f"delete {kind} {namespace}/{name}", body)
        except NotFound:
            return
        except Conflict:
            return  # another incarnation now: not the one we meant

    def ensure(self, obj: Obj) -> Obj:
        """Create obj unless an object of that name exists; return what the cluster holds."""
        try:
            return self.create(obj)
        except Conflict:
            meta = obj["metadata"]
            return self.get(obj["kind"], meta["namespace"], meta["name"])

    def patch_status(self, kind: str, namespace: str, name: str, status: Obj) -> Obj:
        """Merge-patch the status subresource of an HSMSecret or HSMPool."""
        return self._request(
            "PATCH",
            f"{_object(kind, namespace, name)}/status",
            f"patch status of {kind} {namespace}/{name}",
            {"status": status},
            content_type="application/merge-patch+json",
        )

    def patch(self, kind: str, namespace: str, name: str, patch: Obj) -> Obj:
        """Patch a Secret (strategic merge: one owner reference can be taken out by its uid) or the metadata
        of an HSMSecret (JSON merge); a metadata.resourceVersion in patch is a precondition (Conflict)."""
        content_type = (
            "application/strategic-merge-patch+json" if kind == "Secret" else "application/merge-patch+json"
        )
        return self._request(
            "PATCH",
            _object(kind, namespace, name),
            f"patch {kind} {namespace}/{name}",
            patch,
            None,
            content_type,
        )

    def patch_workload(self, kind: str, namespace: str, name: str, patch: Obj) -> Obj:
        """Merge-patch a Deployment, StatefulSet or DaemonSet (apps/v1)."""
        if kind not in _WORKLOADS:
            raise ValueError(f"{kind} is not a workload")
        return self._request(
            "PATCH",
            _object(kind, namespace, name),
            f"patch {kind} {namespace}/{name}",
            patch,
            content_type="application/merge-patch+json",
        )

    def event(self, involved: Obj, reason: str, message: str, warning: bool = False) -> None:
        """Record a Kubernetes Event on involved; failures are swallowed (an event is never worth a retry)."""
        meta = involved["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion", constants.API_VERSION),
                "kind": involved["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid", ""),
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": "hsm-manager"},
            "reportingComponent": "hsm-manager",
            "count": 1,
        }
        try:
            self._request("POST", _collection("Event", meta["namespace"]), "create Event", body)
        except KubeError:
            return

    # ------------------------------------------------------------ collections

    def list_objects(self, kind: str, namespace: str | None, label_selector: str) -> list[Obj]:
        """Objects of kind (Pod, Deployment, Secret, Node) in namespace (all namespaces, or none for Nodes,
        when None) matching label_selector."""
        found = self._request(
            "GET", _collection(kind, namespace), f"list {kind}", query={"labelSelector": label_selector}
        )
        items: list[Obj] = found.get("items") or []
        return items

    def list_custom(self, kind: str, namespace: str | None = None) -> list[Obj]:
        """Every HSMSecret, HSMDevice or HSMPool (of namespace, or of all namespaces)."""
        items: list[Obj] = (
            self._request("GET", _collection(kind, namespace), f"list {kind}").get("items") or []
        )
        return items

    def list_all(self, kind: str, label_selector: str = "") -> tuple[list[Obj], str]:
        """Every object of kind (Secret or a custom kind) in all namespaces, in pages, and the
        resourceVersion to watch from."""
        items: list[Obj] = []
        query = {"labelSelector": label_selector, "limit": str(_PAGE)}
        while True:
            found = self._request("GET", _collection(kind, None), f"list {kind}", query=query)
            items.extend(found.get("items") or [])
            meta = found.get("metadata") or {}
            if not meta.get("continue"):
                return items, str(meta.get("resourceVersion", ""))
            query = {**query, "continue": meta["continue"]}

    def watch(self, kind: str, label_selector: str, resource_version: str, seconds: int) -> Iterator[Obj]:
        """The watch events of kind (Secret or a custom kind, all namespaces) after resource_version, for at
        most seconds, bookmarks included. Gone (410) when that version is too old to watch from."""
        what = f"watch {kind}"
        query = {
            "labelSelector": label_selector,
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(seconds),
        }
        response = self._open(
            "GET",
            _collection(kind, None),
            what,
            query=query,
            timeout=(_TIMEOUT[0], seconds + 30),
            stream=True,
        )
        try:
            rest = b""
            for chunk in response.stream(_CHUNK, decode_content=True):
                *lines, rest = (rest + chunk).split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    event: Obj = json.loads(line)
                    if event.get("type") == "ERROR":
                        status = event.get("object") or {}
                        code = int(status.get("code") or 0)
                        message = f"{what}: {code} {status.get('reason', '')}"
                        raise Gone(message, code) if code == 410 else KubeError(message, code)
                    yield event
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            raise KubeError(f"{what}: the stream broke ({type(exc).__name__})") from None
        finally:
            response.release_conn()

    # ------------------------------------------------------------ the API's callers and PINs

    def review_token(self, token: str) -> Obj | None:
        """The user a bearer token belongs to (a TokenReview's status.user), None when it is not valid."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        review = self._request(
            "POST",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            "TokenReview",
            body,
            timeout=_REVIEW_TIMEOUT,
        )
        status = review.get("status") or {}
        user: Obj | None = status.get("user")
        return user if status.get("authenticated") and user is not None else None

    def review_access(self, spec: Obj) -> bool:
        """Whether the SubjectAccessReview spec (user, groups, extra, resourceAttributes) is allowed."""
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        review = self._request(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            "SubjectAccessReview",
            body,
            timeout=_REVIEW_TIMEOUT,
        )
        return bool((review.get("status") or {}).get("allowed"))

    def update_pin(self, namespace: str, device: str, new_pin: str) -> None:
        """Write new_pin into the PIN Secret the HSMDevice names; its agents read it at their next login."""
        obj = self._request(
            "GET",
            _object(constants.KIND_DEVICE, namespace, device),
            f"get HSMDevice {namespace}/{device}",
            timeout=_REVIEW_TIMEOUT,
        )
        ref = models.HSMDeviceSpec.model_validate(obj.get("spec", {})).pkcs11.pin_secret
        body = {"data": {ref.key: base64.b64encode(new_pin.encode()).decode()}}
        self._request(
            "PATCH",
            _object("Secret", namespace, ref.name),
            f"patch PIN Secret {namespace}/{ref.name}",
            body,
            content_type="application/merge-patch+json",
            timeout=_REVIEW_TIMEOUT,
        )
