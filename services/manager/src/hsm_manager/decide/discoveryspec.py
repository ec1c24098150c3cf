"""The discovery DaemonSet of one HSMDevice: it reports the devices and serves their kubelet device plugin."""

from __future__ import annotations

import dataclasses
from typing import Any

from hsm_common import constants, models

from . import hostpaths, owners

COMPONENT = "discovery"


#: The ServiceAccount the kustomize base grants discovery's permissions to (deploy/kustomize/base/rbac/
#: discovery.yaml: HSMDevices and its own pod, in the operator namespace); one for every device's pods.
SERVICE_ACCOUNT = "hsm-discovery"

#: The container's own mount points, which no host path may take.
MOUNT_PATHS = ("/sys", "/run/udev", constants.DEVICE_PLUGIN_DIR, constants.METRICS_CERT_DIR)

#: The variables that configure discovery's device plugin (services/discovery reads them).
ENV_PLUGIN_DIR = "HSM_DISCOVERY_DEVICE_PLUGIN_DIR"
ENV_NODE_ROOT = "HSM_DISCOVERY_DEVICE_NODE_ROOT"
ENV_MOUNTS = "HSM_DISCOVERY_DEVICE_MOUNTS"
ENV_DEVICE_ENV = "HSM_DISCOVERY_DEVICE_ENV"
#: The HSMDevice a DaemonSet's pods report on and serve: one DaemonSet per HSMDevice, so a node with two
#: HSMDevices runs two discovery pods, and each must leave the other's plugin socket alone.
ENV_HSM_DEVICE = "HSM_DISCOVERY_HSM_DEVICE"
#: Variables the spec sets itself, which no setting may override.
OWN_ENV = (
    "POD_NAME",
    "POD_NAMESPACE",
    "NODE_NAME",
    "POD_IP",
    "HSM_DISCOVERY_HEALTH_LISTEN",
    "HSM_DISCOVERY_METRICS_LISTEN",
    "HSM_DISCOVERY_METRICS_CERT_DIR",
    ENV_PLUGIN_DIR,
    ENV_NODE_ROOT,
    ENV_MOUNTS,
    ENV_DEVICE_ENV,
    ENV_HSM_DEVICE,
)


@dataclasses.dataclass(frozen=True)
class DiscoveryConfig:
    """Operator-wide choices for discovery pods."""

    image: str
    """Discovery image; overlays set its tag."""
    host_paths: tuple[str, ...] = ()
    """Node paths mounted at the same path (e.g. a umockdev testbed)."""
    env: tuple[tuple[str, str], ...] = ()
    """(NAME, VALUE) pairs added to the container's environment after the spec's own (e.g. LD_PRELOAD)."""
    read_only: tuple[bool, ...] = ()
    """Per host path: mounted read-only (empty: every one read-only, like /sys)."""
    device_plugin_dir: str = constants.DEVICE_PLUGIN_DIR
    """The kubelet's device-plugin directory on the nodes (``<kubelet root dir>/device-plugins``)."""
    device_node_root: str = "/"
    """Where the device nodes are as the kubelet sees them: ``/``, or a tree of stand-ins in tests."""
    device_mounts: tuple[str, ...] = ()
    """Node paths the device plugin mounts read-write at the same path in agent containers."""
    device_env: tuple[tuple[str, str], ...] = ()
    """(NAME, VALUE) pairs the device plugin sets in agent containers."""


def name(device: str) -> str:
    """The DaemonSet's name."""
    return f"{device[:50].rstrip('-')}-discovery"


def _field_env(variable: str, path: str) -> dict[str, Any]:
    return {"name": variable, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def _host_volumes(config: DiscoveryConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return hostpaths.volumes_and_mounts(config.host_paths, config.read_only, default_read_only=True)


def _plugin_env(config: DiscoveryConfig) -> list[dict[str, Any]]:
    env = [
        {"name": ENV_PLUGIN_DIR, "value": constants.DEVICE_PLUGIN_DIR},
        {"name": ENV_NODE_ROOT, "value": config.device_node_root},
    ]
    if config.device_mounts:
        env.append({"name": ENV_MOUNTS, "value": ",".join(config.device_mounts)})
    if config.device_env:
        pairs = ",".join(f"{name}={value}" for name, value in config.device_env)
        env.append({"name": ENV_DEVICE_ENV, "value": pairs})
    return env


def daemonset(
    device: str, namespace: str, spec: models.HSMDeviceSpec, owner: owners.Owner, config: DiscoveryConfig
) -> dict[str, Any]:
    """One discovery pod per node matching the device's nodeSelector: it reads /sys and udev read-only and
    serves the device plugin in the kubelet's device-plugin directory."""
    ds_name = name(device)
    host_volumes, host_mounts = _host_volumes(config)
    labels = owners.labels(COMPONENT, device, ds_name)
    selector = {"app.kubernetes.io/component": COMPONENT, "app.kubernetes.io/instance": ds_name}
    container: dict[str, Any] = {
        "name": "discovery",
        "image": config.image,
        "env": [
            _field_env("POD_NAME", "metadata.name"),
            _field_env("POD_NAMESPACE", "metadata.namespace"),
            _field_env("NODE_NAME", "spec.nodeName"),
            _field_env("POD_IP", "status.podIP"),
            # Pod IP, not 0.0.0.0: on the devcluster every pod shares the host's network namespace.
            {"name": "HSM_DISCOVERY_HEALTH_LISTEN", "value": f"$(POD_IP):{constants.PORT_DISCOVERY_HEALTH}"},
            {"name": "HSM_DISCOVERY_METRICS_LISTEN", "value": f"$(POD_IP):{constants.PORT_METRICS}"},
            {"name": "HSM_DISCOVERY_METRICS_CERT_DIR", "value": constants.METRICS_CERT_DIR},
            {"name": ENV_HSM_DEVICE, "value": device},
            *_plugin_env(config),
            *({"name": variable, "value": value} for variable, value in config.env),
        ],
        "ports": [
            {"name": "health", "containerPort": constants.PORT_DISCOVERY_HEALTH},
            {"name": "metrics", "containerPort": constants.PORT_METRICS},
        ],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "health"}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "health"}, "periodSeconds": 20},
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
        # Root, without a single capability: the kubelet's device-plugin directory and its kubelet.sock are
        # root's and closed to others, so creating the plugin's socket there and registering take the
        # owner's uid, no more (no CAP_DAC_OVERRIDE, no other capability).
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsUser": 0,
            "runAsGroup": 0,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "sys", "mountPath": "/sys", "readOnly": True},
            {"name": "udev", "mountPath": "/run/udev", "readOnly": True},
            {"name": "device-plugins", "mountPath": constants.DEVICE_PLUGIN_DIR, "readOnly": False},
            {"name": "metrics-tls", "mountPath": constants.METRICS_CERT_DIR, "readOnly": True},
            *host_mounts,
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": ds_name,
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "selector": {"matchLabels": selector},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": SERVICE_ACCOUNT,
                    # Settings come from HSM_* variables: no Service may inject look-alikes.
                    "enableServiceLinks": False,
                    "nodeSelector": dict(spec.node_selector),
                    "terminationGracePeriodSeconds": 5,
                    "containers": [container],
                    "volumes": [
                        {"name": "sys", "hostPath": {"path": "/sys", "type": "Directory"}},
                        {"name": "udev", "hostPath": {"path": "/run/udev", "type": "DirectoryOrCreate"}},
                        {
                            "name": "device-plugins",
                            # Directory: the kubelet makes it, so a wrong setting shows as a pod that
                            # does not start rather than a plugin the kubelet never hears of.
                            "hostPath": {"path": config.device_plugin_dir, "type": "Directory"},
                        },
                        {
                            "name": "metrics-tls",
                            # Optional: a pod started before the operator issued it serves a self-signed
                            # certificate until the kubelet brings the files.
                            "secret": {
                                "secretName": constants.METRICS_TLS_SECRET,
                                "optional": True,
                                "defaultMode": 0o400,
                            },
                        },
                        *host_volumes,
                    ],
                },
            },
        },
    }
