"""The manager's only door to the Kubernetes API: plain dicts in and out, three errors."""

from __future__ import annotations

import json
import threading
from typing import Any

import kubernetes
from kubernetes.client import exceptions

from hsm_common import constants

Obj = dict[str, Any]


class KubeError(Exception):
    """A Kubernetes API call failed; status is the HTTP status (0 when none came back)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class NotFound(KubeError):
    """The object does not exist."""


class Conflict(KubeError):
    """The object already exists, or changed since it was read (409)."""


def _error(exc: exceptions.ApiException, what: str) -> KubeError:
    # The reason only: response bodies of Secret calls may echo data.
    message = f"{what}: {exc.status} {exc.reason}"
    if exc.status == 404:
        return NotFound(message, 404)
    if exc.status == 409:
        return Conflict(message, 409)
    return KubeError(message, exc.status or 0)


_CUSTOM = {
    constants.KIND_SECRET: constants.PLURAL_SECRET,
    constants.KIND_DEVICE: constants.PLURAL_DEVICE,
    constants.KIND_POOL: constants.PLURAL_POOL,
}


class Kube:
    """Typed-enough access to the few resources the manager touches.

    One ApiClient, shared: its urllib3 pool is thread-safe, and kopf runs sync handlers in threads.
    """

    def __init__(self, api_client: kubernetes.client.ApiClient) -> None:
        self._api = api_client
        self._core = kubernetes.client.CoreV1Api(api_client)
        self._apps = kubernetes.client.AppsV1Api(api_client)
        self._custom = kubernetes.client.CustomObjectsApi(api_client)
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls) -> Kube:
        """In-cluster credentials when running in a pod, else the kubeconfig (KUBECONFIG)."""
        try:
            kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
        configuration = kubernetes.client.Configuration.get_default_copy()
        configuration.connection_pool_maxsize = 16
        return cls(kubernetes.client.ApiClient(configuration))

    def _call(self, what: str, method: Any, *args: Any, **kwargs: Any) -> Obj:
        try:
            response = method(*args, _preload_content=False, _request_timeout=(5, 30), **kwargs)
        except exceptions.ApiException as exc:
            raise _error(exc, what) from None
        except Exception as exc:  # urllib3 and socket errors: the API server is unreachable
            raise KubeError(f"{what}: {type(exc).__name__}") from None
        data = response.data
        return json.loads(data) if data else {}

    # ------------------------------------------------------------ core and apps objects

    def get(self, kind: str, namespace: str, name: str) -> Obj:
        """Read one object of kind (Secret, Pod, ServiceAccount, Deployment, DaemonSet)."""
        read = {
            "Secret": self._core.read_namespaced_secret,
            "Pod": self._core.read_namespaced_pod,
            "ServiceAccount": self._core.read_namespaced_service_account,
            "Deployment": self._apps.read_namespaced_deployment,
            "DaemonSet": self._apps.read_namespaced_daemon_set,
        }[kind]
        return self._call(f"get {kind} {namespace}/{name}", read, name, namespace)

    def create(self, obj: Obj) -> Obj:
        """Create obj; Conflict when it exists."""
        kind, namespace = obj["kind"], obj["metadata"]["namespace"]
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
            "ServiceAccount": self._core.replace_namespaced_service_account,
            "Deployment": self._apps.replace_namespaced_deployment,
            "DaemonSet": self._apps.replace_namespaced_daemon_set,
        }[kind]
        return self._call(f"replace {kind} {namespace}/{name}", replace, name, namespace, obj)

    def delete(self, kind: str, namespace: str, name: str, uid: str | None = None) -> None:
        """Delete an object (foreground for Deployments so their pods go first); absent is fine.

        With uid, only that incarnation is deleted (a precondition), so a fresh replacement survives.
        """
        delete = {
            "Secret": self._core.delete_namespaced_secret,
            "Deployment": self._apps.delete_namespaced_deployment,
            "DaemonSet": self._apps.delete_namespaced_daemon_set,
            "ServiceAccount": self._core.delete_namespaced_service_account,
        }[kind]
        body: Obj = {"propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            self._call(f"delete {kind} {namespace}/{name}", delete, name, namespace, body=body)
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
        """Objects of kind in namespace (all namespaces when None) matching label_selector."""
        if kind == "Pod":
            method: Any = self._core.list_namespaced_pod
            if not namespace:
                method = self._core.list_pod_for_all_namespaces
        elif kind == "Deployment":
            method = self._apps.list_namespaced_deployment
        elif kind == "Secret":
            method = self._core.list_namespaced_secret
        else:
            raise ValueError(f"list of {kind} is not supported")
        args = (namespace,) if namespace else ()
        found = self._call(f"list {kind}", method, *args, label_selector=label_selector)
        items: list[Obj] = found.get("items", [])
        return items

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
        return self._call(
            f"patch status of {kind} {namespace}/{name}",
            self._custom.patch_namespaced_custom_object_status,
            constants.GROUP,
            constants.VERSION,
            namespace,
            _CUSTOM[kind],
            name,
            {"status": status},
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
