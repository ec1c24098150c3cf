"""Port-forwarding to runner pods: kwok's server plays the kubelet, a PortForward per pod tells it where.

``kubectl port-forward`` reaches a pod through the apiserver and its node's kubelet; on kwok nodes that is
kwok's server, which looks up the PortForward named like the pod. Each declared container port forwards to
the same port on the pod's IP, where the runner's process listens. The object is owned by the pod, so the
garbage collector deletes it with the pod.
"""

from collections.abc import Mapping
from typing import Any

from . import podwatch

_API = "/apis/kwok.x-k8s.io/v1alpha1"
_FIELD_MANAGER = "devcluster-podrunner"


def manifest(pod: Mapping[str, Any]) -> dict[str, Any] | None:
    """The PortForward for pod's first container's ports; None when it declares none."""
    ports = sorted({p["containerPort"] for p in pod["spec"]["containers"][0].get("ports", [])})
    if not ports:
        return None
    meta = pod["metadata"]
    address = pod["status"]["podIP"]
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "PortForward",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]},
            ],
        },
        "spec": {
            "forwards": [{"ports": [port], "target": {"address": address, "port": port}} for port in ports]
        },
    }


def publish(client: podwatch.Api, pod: Mapping[str, Any]) -> None:
    """Create or replace pod's PortForward (server-side apply overwrites a same-named pod's stale one)."""
    body = manifest(pod)
    if body is None:
        return
    meta = body["metadata"]
    client.request(
        "PATCH",
        f"{_API}/namespaces/{meta['namespace']}/portforwards/{meta['name']}"
        f"?fieldManager={_FIELD_MANAGER}&force=true",
        body,
        content_type="application/apply-patch+yaml",
    )
