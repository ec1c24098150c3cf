"""kwok Stage configuration: kwok simulates nodes and other pods, the pod runner owns our pods' status.

kwok's stock pod stages mark every pod Ready at once. Pods whose image the pod runner runs must become
Ready only when their process is, so those pods get a stage that only assigns the pod IP (from the node's
podCIDR) and the runner writes the rest of their status.
"""

import json
from collections.abc import Iterable
from typing import Any

import yaml

_API_VERSION = "kwok.x-k8s.io/v1alpha1"

# The first container's image name without registry, tag or digest: "reg:5000/x/hsm-agent:1" -> "hsm-agent".
IMAGE_NAME_KEY = '.spec.containers[0].image | sub("^.*/"; "") | sub("[:@].*$"; "")'

_NOT_DELETING = {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}

_NODE_STATUS = """\
{{ $now := Now }}
conditions:
{{ range NodeConditions }}
- lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $now | Quote }}
  message: {{ .message | Quote }}
  reason: {{ .reason | Quote }}
  status: {{ .status | Quote }}
  type: {{ .type | Quote }}
{{ end }}
addresses:
- address: {{ NodeIP | Quote }}
  type: InternalIP
- address: {{ .metadata.name | Quote }}
  type: Hostname
daemonEndpoints:
  kubeletEndpoint:
    Port: {{ NodePort }}
allocatable:
  cpu: "32"
  memory: 64Gi
  pods: "110"
capacity:
  cpu: "32"
  memory: 64Gi
  pods: "110"
nodeInfo:
  architecture: amd64
  operatingSystem: linux
  kubeletVersion: fake
  kubeProxyVersion: fake
phase: Running
"""

_POD_IPS = """\
{{ $hostIPs := NodeIPsWith .spec.nodeName }}
{{ with $hostIPs }}
hostIP: {{ index . 0 | Quote }}
hostIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
{{ $podIPs := PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) \
  ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
{{ with $podIPs }}
podIP: {{ index . 0 | Quote }}
podIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
"""

_POD_READY = (
    """\
{{ $now := Now }}
conditions:
{{ range list "Initialized" "Ready" "ContainersReady" "PodScheduled" }}
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: {{ . | Quote }}
{{ end }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  started: true
  restartCount: 0
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
phase: Running
startTime: {{ $now | Quote }}
"""
    + _POD_IPS
)


def _stage(name: str, kind: str, match: list[dict[str, Any]], nxt: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": _API_VERSION,
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": kind},
            "selector": {"matchExpressions": match},
            "next": nxt,
        },
    }


def stages(runner_images: Iterable[str]) -> list[dict[str, Any]]:
    """The Stage objects kwok runs with; ``runner_images`` are the image names the pod runner owns."""
    images = sorted(set(runner_images))
    ours = {"key": IMAGE_NAME_KEY, "operator": "In", "values": images}
    not_ours = {"key": IMAGE_NAME_KEY, "operator": "NotIn", "values": images}
    not_ready = {
        "key": '.status.conditions.[] | select( .type == "Ready" ) | .status',
        "operator": "NotIn",
        "values": ["True"],
    }
    return [
        _stage("node-initialize", "Node", [not_ready], {"statusTemplate": _NODE_STATUS}),
        _stage(
            "pod-ready",
            "Pod",
            [
                _NOT_DELETING,
                {"key": ".status.phase", "operator": "In", "values": ["Pending"]},
                not_ready,
                not_ours,
            ],
            {"statusTemplate": _POD_READY},
        ),
        _stage(
            "pod-ip-for-runner",
            "Pod",
            [_NOT_DELETING, {"key": ".status.podIP", "operator": "DoesNotExist"}, ours],
            {"statusTemplate": _POD_IPS},
        ),
        # No kubelet confirms termination, so a pod being deleted goes at once (the runner stops its process
        # when it sees the deletionTimestamp or the deletion).
        _stage(
            "pod-delete",
            "Pod",
            [{"key": ".metadata.deletionTimestamp", "operator": "Exists"}],
            {"finalizers": {"empty": True}, "delete": True},
        ),
    ]


def render(runner_images: Iterable[str]) -> str:
    """The kwok ``--config`` file text."""
    return yaml.safe_dump_all(stages(runner_images), sort_keys=False)


def selector_json(runner_images: Iterable[str]) -> str:
    """The runner images as kwok sees them, for logs."""
    return json.dumps(sorted(set(runner_images)))
