"""Fake Node objects for kwok: node N gets pod IPs from 127.B.N.0/24 (every 127.x address is local).

B is the cluster's address block (``ipblock``): 1 for the first cluster on the machine.
"""

from typing import Any

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_ANNOTATION_VALUE = "fake"


def name(index: int) -> str:
    """Name of the ``index``-th fake node (1-based)."""
    return f"node-{index}"


def pod_cidr(index: int, block: int = 1) -> str:
    """The loopback pod CIDR of the ``index``-th node of the cluster with address block ``block``."""
    if not 1 <= index <= 254 or not 1 <= block <= 254:
        raise ValueError(f"node index {index} or block {block} out of range 1..254")
    return f"127.{block}.{index}.0/24"


def manifest(index: int, block: int = 1) -> dict[str, Any]:
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
        "spec": {"podCIDR": pod_cidr(index, block), "podCIDRs": [pod_cidr(index, block)]},
    }
