"""All Kubernetes API access of discovery: HSMDevice list/watch, own node's labels, own pod's annotation."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import kubernetes
import urllib3

from hsm_common import constants

from . import errors

_NETWORK_ERRORS = (urllib3.exceptions.HTTPError, OSError)


def _api_error(err: Exception) -> errors.ApiError:
    if isinstance(err, kubernetes.client.ApiException):
        if err.status == 410:
            return errors.WatchExpired("watch expired", status=410)
        return errors.ApiError(f"API server answered {err.status} {err.reason}", status=err.status)
    return errors.ApiError(f"API server unreachable: {type(err).__name__}")


class Client:
    """A thin typed wrapper over the kubernetes client; every call raises errors.ApiError on failure."""

    def __init__(self, api: kubernetes.client.ApiClient) -> None:
        self._core = kubernetes.client.CoreV1Api(api)
        self._custom = kubernetes.client.CustomObjectsApi(api)

    def node_labels(self, node: str) -> dict[str, str]:
        try:
            found = self._core.read_node(node, _request_timeout=10)
        except (kubernetes.client.ApiException, *_NETWORK_ERRORS) as err:
            raise _api_error(err) from err
        metadata = found.metadata
        return dict(metadata.labels or {}) if metadata is not None else {}

    def list_devices(self, namespace: str, label_selector: str) -> tuple[list[dict[str, Any]], str]:
        """The HSMDevice objects of namespace and the list's resourceVersion."""
        try:
            listed = self._custom.list_namespaced_custom_object(
                constants.GROUP,
                constants.VERSION,
                namespace,
                constants.PLURAL_DEVICE,
                label_selector=label_selector,
                _request_timeout=10,
            )
        except (kubernetes.client.ApiException, *_NETWORK_ERRORS) as err:
            raise _api_error(err) from err
        body: dict[str, Any] = listed  # type: ignore[assignment]  # custom objects are typed as object
        return list(body.get("items", [])), str(body["metadata"]["resourceVersion"])

    def watch_devices(
        self, namespace: str, label_selector: str, resource_version: str, timeout: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(event type, object) pairs after resource_version, ending after timeout seconds (the resync)."""
        watch = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
        try:
            for event in watch.stream(  # type: ignore[no-untyped-call]
                self._custom.list_namespaced_custom_object,
                constants.GROUP,
                constants.VERSION,
                namespace,
                constants.PLURAL_DEVICE,
                label_selector=label_selector,
                resource_version=resource_version,
                timeout_seconds=timeout,
                allow_watch_bookmarks=True,
                # The read timeout outlives the server-side timeout, so a silent server still ends the watch.
                _request_timeout=(10, timeout + 15),
            ):
                if event["type"] == "ERROR":
                    status = event["raw_object"] or {}
                    code = status.get("code")
                    if code == 410:
                        raise errors.WatchExpired("watch expired", status=410)
                    raise errors.ApiError(f"watch error {code}: {status.get('reason')}", status=code)
                yield str(event["type"]), dict(event["raw_object"])
        except (kubernetes.client.ApiException, *_NETWORK_ERRORS) as err:
            raise _api_error(err) from err
        finally:
            watch.stop()  # type: ignore[no-untyped-call]

    def annotate_pod(self, namespace: str, pod: str, key: str, value: str) -> None:
        """Set one annotation on a pod with a merge patch (other annotations are left alone)."""
        body = {"metadata": {"annotations": {key: value}}}
        try:
            self._core.patch_namespaced_pod(pod, namespace, body, _request_timeout=10)
        except (kubernetes.client.ApiException, *_NETWORK_ERRORS) as err:
            raise _api_error(err) from err


def connect() -> Client:
    """A Client from the in-cluster ServiceAccount when running in a pod, else from KUBECONFIG."""
    config = kubernetes.client.Configuration()
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            kubernetes.config.load_incluster_config(client_configuration=config)  # type: ignore[no-untyped-call]
        else:
            kubernetes.config.load_kube_config(client_configuration=config)  # type: ignore[no-untyped-call]
    except (kubernetes.config.ConfigException, OSError) as err:
        raise errors.ConfigError(f"no Kubernetes configuration: {err}") from err
    return Client(kubernetes.client.ApiClient(config))
