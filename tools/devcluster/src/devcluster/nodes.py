"""Fake Node objects for kwok: node N gets pod IPs from 127.1.N.0/24 (every 127.x address is local)."""

from typing import Any

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_ANNOTATION_VALUE = "fake"


def name(index: int) -> str:
    """Name of the ``index``-th fake node (1-based)."""
    return f"kwok-node-{index}"


def pod_cidr(index: int) -> str:
    """The loopback pod CIDR of the ``index``-th node."""
    if not 1 <= index <= 254:
        raise ValueError(f"node index {index} out of range 1..254")
    return f"127.1.{index}.0/24"


def manifest(index: int) -> dict[str, Any]:
    """The Node object; kwok manages it because of the annotation, and it has no NoSchedule taint.

    Its address is left to kwok (``--node-ip``, 127.0.0.1) so no pod IP of the range is taken by the node.
    """
    node_name = name(index)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node_name,
            "annotations": {KWOK_ANNOTATION: KWOK_ANNOTATION_VALUE, "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": node_name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "spec": {"podCIDR": pod_cidr(index), "podCIDRs": [pod_cidr(index)]},
    }
