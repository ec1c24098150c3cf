"""The manager's only door to the Kubernetes API: plain dicts in and out, three errors.

Both processes load their client here, by one rule (``Kube.connect``): an explicit kubeconfig file when
given, else the pod's ServiceAccount when running in a cluster, else the default kubeconfig ($KUBECONFIG or
~/.kube/config), so a developer's shell and a pod need no flag and a test can point anywhere.
"""

from __future__ import annotations

import base64
import functools
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import kubernetes
import urllib3
from kubernetes.client import exceptions

from hsm_common import constants, models

Obj = dict[str, Any]

#: The client imports its API classes lazily; naming them here lets gunicorn's master import them once.
_APIS = (
    kubernetes.client.AppsV1Api,
    kubernetes.client.AuthenticationV1Api,
    kubernetes.client.AuthorizationV1Api,
    kubernetes.client.CoreV1Api,
    kubernetes.client.CustomObjectsApi,
)

#: (connect, read) seconds of one call; watches are kopf's, so nothing here waits longer.
_TIMEOUT = (5.0, 30.0)
#: Objects per page of a full list (the API server's own default page size for informers).
_PAGE = 500
#: Seconds the bearer token header of the sync's own writes is reused before the credentials are asked again.
_AUTH_SECONDS = 10.0
#: Bytes read from a watch stream at a time.
_CHUNK = 65536
#: A review holds up an API request: past this the API answers that its backend is unavailable.
_REVIEW_TIMEOUT = 5.0


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


def _error(exc: exceptions.ApiException, what: str) -> KubeError:
    # The reason only: response bodies of Secret calls may echo data.
    message = f"{what}: {exc.status} {exc.reason}"
    if exc.status == 404:
        return NotFound(message, 404)
    if exc.status == 409:
        return Conflict(message, 409)
    if exc.status == 410:
        return Gone(message, 410)
    return KubeError(message, exc.status or 0)


_CUSTOM = {
    constants.KIND_SECRET: constants.PLURAL_SECRET,
    constants.KIND_DEVICE: constants.PLURAL_DEVICE,
    constants.KIND_POOL: constants.PLURAL_POOL,
}

_WORKLOADS = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}


class Kube:
    """Typed-enough access to the few resources the manager touches.

    One ApiClient, shared: its urllib3 pool is thread-safe, and kopf runs sync handlers in threads.
    """

    def __init__(self, api_client: kubernetes.client.ApiClient) -> None:
        self._api_client = api_client
        self._api_pool: Any = None
        self._auth: dict[str, str] = {}
        self._auth_until = 0.0
        self._core = kubernetes.client.CoreV1Api(api_client)
        self._apps = kubernetes.client.AppsV1Api(api_client)
        self._custom = kubernetes.client.CustomObjectsApi(api_client)
        self._authn = kubernetes.client.AuthenticationV1Api(api_client)
        self._authz = kubernetes.client.AuthorizationV1Api(api_client)

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
        # Sync workers, kopf's handler threads and gunicorn's threads share the pool.
        configuration.connection_pool_maxsize = 16
        return cls(kubernetes.client.ApiClient(configuration))

    def _call(
        self,
        what: str,
        method: Any,
        *args: Any,
        timeout: float | tuple[float, float] = _TIMEOUT,
        **kwargs: Any,
    ) -> Obj:
        try:
            response = method(*args, _preload_content=False, _request_timeout=timeout, **kwargs)
        except exceptions.ApiException as exc:
            raise _error(exc, what) from None
        except Exception as exc:  # urllib3 and socket errors: the API server is unreachable
            raise KubeError(f"{what}: the Kubernetes API is unreachable ({type(exc).__name__})") from None
        data = response.data
        return json.loads(data) if data else {}

    # ------------------------------------------------------------ core and apps objects

    def get(self, kind: str, namespace: str, name: str) -> Obj:
        """Read one object of kind (Secret, ConfigMap, Pod, ServiceAccount, Deployment, DaemonSet, custom)."""
        if kind in _CUSTOM:
            return self.get_custom(kind, namespace, name)
        read = {
            "Secret": self._core.read_namespaced_secret,
            "ConfigMap": self._core.read_namespaced_config_map,
            "Pod": self._core.read_namespaced_pod,
            "ServiceAccount": self._core.read_namespaced_service_account,
            "Deployment": self._apps.read_namespaced_deployment,
            "DaemonSet": self._apps.read_namespaced_daemon_set,
        }[kind]
        return self._call(f"get {kind} {namespace}/{name}", read, name, namespace)

    def _send(self, method: str, path: str, body: Obj, what: str, content_type: str) -> Obj:
        """One request straight through the client's connection pool and credentials.

        For the sync's two writes per HSMSecret only: the generated API methods spend more CPU validating
        and serialising their arguments than the request itself takes (by py-spy, 13% of the operator's
        CPU during a cold convergence against 28% for the requests).
        """
        headers = {"Accept": "application/json", "Content-Type": content_type, **self._auth_header()}
        try:
            response = self._pool().urlopen(
                method,
                path,
                body=json.dumps(body),
                headers=headers,
                timeout=urllib3.Timeout(connect=_TIMEOUT[0], read=_TIMEOUT[1]),
                retries=False,
            )
        except Exception as exc:  # urllib3 and socket errors: the API server is unreachable
            raise KubeError(f"{what}: the Kubernetes API is unreachable ({type(exc).__name__})") from None
        if response.status >= 300:
            raise _error(exceptions.ApiException(status=response.status, reason=response.reason), what)
        data = response.data
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

    def create(self, obj: Obj) -> Obj:
        """Create obj; Conflict when it exists."""
        kind, namespace = obj["kind"], obj["metadata"]["namespace"]
        if kind == "Secret":
            return self._send(
                "POST",
                f"/api/v1/namespaces/{quote(namespace)}/secrets",
                obj,
                f"create Secret {namespace}/{obj['metadata']['name']}",
                "application/json",
            )
        if kind in _CUSTOM:
            return self._call(
                f"create {kind} {namespace}/{obj['metadata']['name']}",
                self._custom.create_namespaced_custom_object,
                constants.GROUP,
                constants.VERSION,
                namespace,
                _CUSTOM[kind],
                obj,
            )
        create = {
            "Secret": self._core.create_namespaced_secret,
            "ConfigMap": self._core.create_namespaced_config_map,
            "ServiceAccount": self._core.create_namespaced_service_account,
            "Deployment": self._apps.create_namespaced_deployment,
            "DaemonSet": self._apps.create_namespaced_daemon_set,
        }[kind]
        return self._call(f"create {kind} {namespace}/{obj['metadata']['name']}", create, namespace, obj)

    def replace(self, obj: Obj) -> Obj:
        """Replace obj (with its resourceVersion, if set: Conflict when it changed meanwhile)."""
        kind, namespace, name = obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"]
        replace = {
            "Secret": self._core.replace_namespaced_secret,
            "ConfigMap": self._core.replace_namespaced_config_map,
            "ServiceAccount": self._core.replace_namespaced_service_account,
            "Deployment": self._apps.replace_namespaced_deployment,
            "DaemonSet": self._apps.replace_namespaced_daemon_set,
        }[kind]
        return self._call(f"replace {kind} {namespace}/{name}", replace, name, namespace, obj)

    def delete(self, kind: str, namespace: str, name: str, uid: str | None = None) -> None:
        """Delete an object (its dependents are collected in the background); absent is fine.

        With uid, only that incarnation is deleted (a precondition), so a fresh replacement survives.
        """
        body: Obj = {"propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        what = f"delete {kind} {namespace}/{name}"
        try:
            if kind in _CUSTOM:
                self._call(
                    what,
                    self._custom.delete_namespaced_custom_object,
                    constants.GROUP,
                    constants.VERSION,
                    namespace,
                    _CUSTOM[kind],
                    name,
                    body=body,
                )
                return
            delete = {
                "Secret": self._core.delete_namespaced_secret,
                "Pod": self._core.delete_namespaced_pod,
                "Deployment": self._apps.delete_namespaced_deployment,
                "DaemonSet": self._apps.delete_namespaced_daemon_set,
                "ServiceAccount": self._core.delete_namespaced_service_account,
            }[kind]
            self._call(what, delete, name, namespace, body=body)
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
            if obj["kind"] in _CUSTOM:
                return self.get_custom(obj["kind"], meta["namespace"], meta["name"])
            return self.get(obj["kind"], meta["namespace"], meta["name"])

    def list_objects(self, kind: str, namespace: str | None, label_selector: str) -> list[Obj]:
        """Objects of kind (Pod, Deployment, Secret, Node) in namespace (all namespaces, or none for Nodes,
        when None) matching label_selector."""
        if kind == "Pod":
            method: Any = self._core.list_namespaced_pod
            if not namespace:
                method = self._core.list_pod_for_all_namespaces
        elif kind == "Deployment":
            method = self._apps.list_namespaced_deployment
        elif kind == "Secret":
            method = self._core.list_namespaced_secret
        elif kind == "Node":
            method = self._core.list_node  # cluster-scoped: namespace is None
        else:
            raise ValueError(f"list of {kind} is not supported")
        args = (namespace,) if namespace else ()
        found = self._call(f"list {kind}", method, *args, label_selector=label_selector)
        items: list[Obj] = found.get("items", [])
        return items

    # ------------------------------------------------------------ collections the operator informs itself of

    def _collection(self, kind: str) -> Any:
        if kind == "Secret":
            return self._core.list_secret_for_all_namespaces
        return functools.partial(
            self._custom.list_cluster_custom_object, constants.GROUP, constants.VERSION, _CUSTOM[kind]
        )

    def list_all(self, kind: str, label_selector: str = "") -> tuple[list[Obj], str]:
        """Every object of kind (Secret or a custom kind) in all namespaces, in pages, and the
        resourceVersion to watch from."""
        items: list[Obj] = []
        page: dict[str, Any] = {}
        while True:
            found = self._call(
                f"list {kind}",
                self._collection(kind),
                label_selector=label_selector,
                limit=_PAGE,
                **page,
            )
            items.extend(found.get("items") or [])
            meta = found.get("metadata") or {}
            if not meta.get("continue"):
                return items, str(meta.get("resourceVersion", ""))
            page = {"_continue": meta["continue"]}

    def watch(self, kind: str, label_selector: str, resource_version: str, seconds: int) -> Iterator[Obj]:
        """The watch events of kind (Secret or a custom kind, all namespaces) after resource_version, for at
        most seconds, bookmarks included. Gone (410) when that version is too old to watch from."""
        what = f"watch {kind}"
        try:
            response = self._collection(kind)(
                label_selector=label_selector,
                watch=True,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=seconds,
                _preload_content=False,
                _request_timeout=(_TIMEOUT[0], seconds + 30),
            )
        except exceptions.ApiException as exc:
            raise _error(exc, what) from None
        except Exception as exc:
            raise KubeError(f"{what}: the Kubernetes API is unreachable ({type(exc).__name__})") from None
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

    # ------------------------------------------------------------ custom objects

    def get_custom(self, kind: str, namespace: str, name: str) -> Obj:
        """Read an HSMSecret, HSMDevice or HSMPool."""
        return self._call(
            f"get {kind} {namespace}/{name}",
            self._custom.get_namespaced_custom_object,
            constants.GROUP,
            constants.VERSION,
            namespace,
            _CUSTOM[kind],
            name,
        )

    def list_custom(self, kind: str, namespace: str | None = None) -> list[Obj]:
        """Every HSMSecret, HSMDevice or HSMPool (of namespace, or of all namespaces)."""
        if namespace:
            result = self._call(
                f"list {kind}",
                self._custom.list_namespaced_custom_object,
                constants.GROUP,
                constants.VERSION,
                namespace,
                _CUSTOM[kind],
            )
        else:
            result = self._call(
                f"list {kind}",
                self._custom.list_cluster_custom_object,
                constants.GROUP,
                constants.VERSION,
                _CUSTOM[kind],
            )
        items: list[Obj] = result.get("items", [])
        return items

    def patch_status(self, kind: str, namespace: str, name: str, status: Obj) -> Obj:
        """Merge-patch the status subresource of an HSMSecret or HSMPool."""
        return self._send(
            "PATCH",
            f"/apis/{constants.GROUP}/{constants.VERSION}/namespaces/{quote(namespace)}/{_CUSTOM[kind]}/"
            f"{quote(name)}/status",
            {"status": status},
            f"patch status of {kind} {namespace}/{name}",
            "application/merge-patch+json",
        )

    def patch(self, kind: str, namespace: str, name: str, patch: Obj) -> Obj:
        """Patch a Secret (strategic merge: one owner reference can be taken out by its uid) or the metadata
        of an HSMSecret (JSON merge); a metadata.resourceVersion in patch is a precondition (Conflict)."""
        if kind == "Secret":
            path = f"/api/v1/namespaces/{quote(namespace)}/secrets/{quote(name)}"
            content_type = "application/strategic-merge-patch+json"
        else:
            path = (
                f"/apis/{constants.GROUP}/{constants.VERSION}/namespaces/{quote(namespace)}/{_CUSTOM[kind]}/"
                f"{quote(name)}"
            )
            content_type = "application/merge-patch+json"
        return self._send("PATCH", path, patch, f"patch {kind} {namespace}/{name}", content_type)

    def patch_workload(self, kind: str, namespace: str, name: str, patch: Obj) -> Obj:
        """Merge-patch a Deployment, StatefulSet or DaemonSet (apps/v1)."""
        return self._send(
            "PATCH",
            f"/apis/apps/v1/namespaces/{quote(namespace)}/{_WORKLOADS[kind]}/{quote(name)}",
            patch,
            f"patch {kind} {namespace}/{name}",
            "application/merge-patch+json",
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
            self._call("create Event", self._core.create_namespaced_event, meta["namespace"], body)
        except KubeError:
            return

    # ------------------------------------------------------------ the API's callers and PINs

    def review_token(self, token: str) -> Obj | None:
        """The user a bearer token belongs to (a TokenReview's status.user), None when it is not valid."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        review = self._call("TokenReview", self._authn.create_token_review, body, timeout=_REVIEW_TIMEOUT)
        status = review.get("status") or {}
        user: Obj | None = status.get("user")
        return user if status.get("authenticated") and user is not None else None

    def review_access(self, spec: Obj) -> bool:
        """Whether the SubjectAccessReview spec (user, groups, extra, resourceAttributes) is allowed."""
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        review = self._call(
            "SubjectAccessReview", self._authz.create_subject_access_review, body, timeout=_REVIEW_TIMEOUT
        )
        return bool((review.get("status") or {}).get("allowed"))

    def update_pin(self, namespace: str, device: str, new_pin: str) -> None:
        """Write new_pin into the PIN Secret the HSMDevice names; its agents read it at their next login."""
        obj = self._call(
            f"get HSMDevice {namespace}/{device}",
            self._custom.get_namespaced_custom_object,
            constants.GROUP,
            constants.VERSION,
            namespace,
            constants.PLURAL_DEVICE,
            device,
            timeout=_REVIEW_TIMEOUT,
        )
        ref = models.HSMDeviceSpec.model_validate(obj.get("spec", {})).pkcs11.pin_secret
        body = {"data": {ref.key: base64.b64encode(new_pin.encode()).decode()}}
        self._call(
            f"patch PIN Secret {namespace}/{ref.name}",
            self._core.patch_namespaced_secret,
            ref.name,
            namespace,
            body,
            timeout=_REVIEW_TIMEOUT,
        )
