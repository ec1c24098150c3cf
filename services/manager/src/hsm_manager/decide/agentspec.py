"""Agent objects (ServiceAccount, TLS Secret, Deployment) per physical device, and which to change."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
from typing import Any

from hsm_common import constants, models

from . import owners

COMPONENT = "agent"
INSTANCE_LABEL = "app.kubernetes.io/instance"
ANNOTATION_NODE = f"{constants.GROUP}/node"
ANNOTATION_TEMPLATE_HASH = f"{constants.GROUP}/template-hash"
ANNOTATION_SERIAL = constants.LABEL_SERIAL
TLS_MOUNT = "/etc/hsm/tls"
PIN_MOUNT = "/etc/hsm/pin"
PCSCD_RUN = "/run/pcscd"
"""Where pcscd puts its socket and pid file (compiled into Debian's pcscd): the one place it writes."""
#: The container's own mount points, which no path the device plugin mounts may take.
MOUNT_PATHS = (PIN_MOUNT, TLS_MOUNT, constants.METRICS_CERT_DIR, "/tmp", PCSCD_RUN)  # noqa: S108 - an emptyDir
#: Variables the spec sets itself, which nothing the device plugin adds may override.
OWN_ENV = ("POD_IP",)
HOSTNAME_LABEL = "kubernetes.io/hostname"
AGENT_UID = 65532
"""User and group of agents that do not run as root."""


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """Operator-wide choices for agent pods."""

    image: str
    """Agent image; overlays set its tag."""
    run_as_root: bool = False
    """Run the agent and its pcscd as root (still without capabilities). The device plugin hands the agent
    its USB device node with the owner and mode it has on the node, usually root's and not writable by
    others, and pcscd opens it read-write. SoftHSM2 and modules without a device node need no root."""
    device_mounts: tuple[str, ...] = ()
    """Node paths discovery's device plugin mounts into the container with the device."""
    device_env: tuple[tuple[str, str], ...] = ()
    """(NAME, VALUE) pairs discovery's device plugin sets in the container with the device."""


@dataclasses.dataclass(frozen=True)
class ExistingAgent:
    """An agent Deployment as found in the cluster."""

    name: str
    serial: str
    node: str
    template_hash: str


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to do to the agents of one device."""

    create: tuple[models.AggregatedDevice, ...] = ()
    recreate: tuple[models.AggregatedDevice, ...] = ()
    """Deployments to replace: the device moved to another node or the desired pod template changed."""
    delete: tuple[str, ...] = ()
    """Deployment names whose device is gone beyond the grace period."""

    def empty(self) -> bool:
        """Nothing to do."""
        return not (self.create or self.recreate or self.delete)


def agent_name(device: str, serial: str) -> str:
    """The agent's Deployment name, also its TLS server name: stable per (device, serial), DNS-safe."""
    digest = hashlib.sha256(serial.encode()).hexdigest()[:10]
    return f"{device[:40].rstrip('-')}-agent-{digest}"


def service_account_name(device: str) -> str:
    """The agents' ServiceAccount (one per device). Its only grant is the kustomize base's review of the
    callers of their metrics (deploy/kustomize/base/rbac/metrics.yaml)."""
    return f"{device[:50].rstrip('-')}-agent"


def tls_secret_name(agent: str) -> str:
    """The Secret that holds an agent's serving certificate and the CA of its clients."""
    return f"{agent}-tls"


def _serial_label(serial: str) -> str:
    # Label values allow 63 chars of [-_.a-zA-Z0-9]; the full serial lives in an annotation.
    cleaned = re.sub(r"[^-_.a-zA-Z0-9]", "_", serial)[:63].strip("-_.")
    return cleaned or "unknown"


def service_account(device: str, namespace: str, owner: owners.Owner) -> dict[str, Any]:
    """The agents' ServiceAccount; its token is mounted only where a pod asks for it (the agents' do)."""
    name = service_account_name(device)
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": owners.labels(COMPONENT, device, name),
            "ownerReferences": [owner.reference()],
        },
        "automountServiceAccountToken": False,
    }


def tls_secret(
    device: str, agent: str, namespace: str, owner: owners.Owner, cert: bytes, key: bytes, ca: bytes
) -> dict[str, Any]:
    """The agent's kubernetes.io/tls Secret with the CA that signs the manager's client certificate."""

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {
            "name": tls_secret_name(agent),
            "namespace": namespace,
            "labels": owners.labels(COMPONENT, device, agent),
            "ownerReferences": [owner.reference()],
        },
        "data": {"tls.crt": b64(cert), "tls.key": b64(key), "ca.crt": b64(ca)},
    }


def _args(spec: models.HSMDeviceSpec, agent: str, serial: str) -> list[str]:
    pkcs11 = spec.pkcs11
    args = [
        f"--pkcs11-library={pkcs11.library_path}",
        f"--pin-file={PIN_MOUNT}/{pkcs11.pin_secret.key}",
        f"--listen=$(POD_IP):{constants.PORT_AGENT_GRPC}",
        # The pod's own address, the one the kubelet's probes, the manager and Prometheus use; nothing else.
        f"--health-listen=$(POD_IP):{constants.PORT_AGENT_HEALTH}",
        f"--metrics-listen=$(POD_IP):{constants.PORT_METRICS}",
        f"--metrics-cert-dir={constants.METRICS_CERT_DIR}",
        f"--tls-cert={TLS_MOUNT}/tls.crt",
        f"--tls-key={TLS_MOUNT}/tls.key",
        f"--tls-client-ca={TLS_MOUNT}/ca.crt",
        f"--device-name={agent}",
    ]
    if pkcs11.token_label:
        args.append(f"--token-label={pkcs11.token_label}")
    if pkcs11.slot_id is not None:
        args.append(f"--slot-id={pkcs11.slot_id}")
    if not pkcs11.token_label and pkcs11.slot_id is None:
        # Without a label or slot the USB serial names the token. With one, the token is named already, and
        # a token's PKCS#11 serial need not equal the USB serial discovery reads, so it is not checked.
        args.append(f"--serial={serial}")
    # Unset, the agent picks the budget its PKCS#11 module fits (OpenSC-driven tokens hold far less).
    if pkcs11.max_objects is not None:
        args.append(f"--max-objects={pkcs11.max_objects}")
    if pkcs11.max_object_size is not None:
        args.append(f"--max-object-size={pkcs11.max_object_size}")
    return args


def _metrics_tls() -> dict[str, Any]:
    """The metrics Secret's volume source (it lives in the operator namespace, where HSMDevices are)."""
    return {"secretName": constants.METRICS_TLS_SECRET, "optional": True, "defaultMode": 0o400}


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": constants.PORT_AGENT_HEALTH},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _security(run_as_root: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The container's and the pod's securityContext."""
    # No capability, root or not: pcscd opens its device node as the node's owner (plain file permissions,
    # no CAP_DAC_OVERRIDE), talks to it through usbfs ioctls, which need only that open file, and binds its
    # socket in an emptyDir. The device cgroup rule comes with the device plugin's allocation, so nothing
    # here is privileged either.
    container: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if run_as_root:
        return container | {"runAsUser": 0, "runAsGroup": 0}, {}
    # The PIN and TLS Secrets are mounted 0400: the agent's group must own them to read them as non-root.
    non_root = {"runAsNonRoot": True, "runAsUser": AGENT_UID, "runAsGroup": AGENT_UID}
    return container | non_root, {"fsGroup": AGENT_UID}


def _pod_spec(
    device: str, spec: models.HSMDeviceSpec, agent: str, serial: str, node: str, config: AgentConfig
) -> dict[str, Any]:
    container_security, pod_security = _security(config.run_as_root)
    # The agent's one host resource: a device of the HSMDevice on this node, which discovery's device plugin
    # allocates (its device node, and the mounts and variables discovery is configured to add). Requests
    # equal limits: the kubelet accepts nothing else for an extended resource.
    device_resource = {constants.resource_name(device): "1"}
    return {
        "securityContext": pod_security,
        "serviceAccountName": service_account_name(device),
        # The agent's one use of the API server: TokenReview and SubjectAccessReview of whoever scrapes its
        # metrics. The kubelet's projected token is rotated, and the agent reads it again at each review.
        "automountServiceAccountToken": True,
        # Settings come from HSM_* variables: no Service may inject look-alikes (``<SERVICE>_PORT=tcp://…``).
        "enableServiceLinks": False,
        "nodeSelector": {**spec.node_selector, HOSTNAME_LABEL: node},
        "terminationGracePeriodSeconds": 10,
        "containers": [
            {
                "name": "agent",
                "image": config.image,
                "args": _args(spec, agent, serial),
                "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                "ports": [
                    {"name": "grpc", "containerPort": constants.PORT_AGENT_GRPC},
                    {"name": "health", "containerPort": constants.PORT_AGENT_HEALTH},
                    {"name": "metrics", "containerPort": constants.PORT_METRICS},
                ],
                "readinessProbe": _probe("/readyz", 2, 2),
                "livenessProbe": _probe("/healthz", 10, 3),
                "resources": {
                    "requests": {"cpu": "20m", "memory": "48Mi", **device_resource},
                    "limits": {"memory": "256Mi", **device_resource},
                },
                "securityContext": container_security,
                "volumeMounts": [
                    {"name": "pin", "mountPath": PIN_MOUNT, "readOnly": True},
                    {"name": "tls", "mountPath": TLS_MOUNT, "readOnly": True},
                    {"name": "metrics-tls", "mountPath": constants.METRICS_CERT_DIR, "readOnly": True},
                    {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir, not a shared /tmp
                    {"name": "pcscd", "mountPath": PCSCD_RUN},
                ],
            }
        ],
        "volumes": [
            {"name": "pin", "secret": {"secretName": spec.pkcs11.pin_secret.name, "defaultMode": 0o400}},
            {"name": "tls", "secret": {"secretName": tls_secret_name(agent), "defaultMode": 0o400}},
            # The metrics' leaf every component serves, not the agent's own gRPC leaf: that one names only
            # the agent, while a scraper checks every agent (and the other components) against one server
            # name. Optional: an agent made before the operator issued it serves a self-signed certificate
            # until the kubelet brings the files.
            {"name": "metrics-tls", "secret": _metrics_tls()},
            {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
            {"name": "pcscd", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
        ],
    }


def template_hash(device: str, spec: models.HSMDeviceSpec, config: AgentConfig) -> str:
    """A digest of the pod template of device's agents with serial and node left out (those are compared
    directly), and of what the device plugin adds to it: whatever changes either (the spec, the settings,
    this module) replaces the agents."""
    template = _pod_spec(device, spec, agent="", serial="", node="", config=config)
    # The plugin's additions are not in the template, yet a running agent has the ones of its allocation.
    material = [template, config.device_mounts, config.device_env]
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def deployment(
    device: str,
    namespace: str,
    spec: models.HSMDeviceSpec,
    found: models.AggregatedDevice,
    owner: owners.Owner,
    config: AgentConfig,
) -> dict[str, Any]:
    """The agent Deployment for one physical device: one replica, Recreate, pinned to the device's node."""
    agent = agent_name(device, found.serial_number)
    labels = owners.labels(COMPONENT, device, agent)
    labels[constants.LABEL_SERIAL] = _serial_label(found.serial_number)
    selector = {constants.LABEL_COMPONENT: COMPONENT, INSTANCE_LABEL: agent}
    annotations = {
        ANNOTATION_SERIAL: found.serial_number,
        ANNOTATION_NODE: found.node_name,
        ANNOTATION_TEMPLATE_HASH: template_hash(device, spec, config),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": agent,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "replicas": 1,
            # Two agents on one token would fight over its single login session.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels, "annotations": {ANNOTATION_SERIAL: found.serial_number}},
                "spec": _pod_spec(device, spec, agent, found.serial_number, found.node_name, config),
            },
        },
    }


def existing(deployment_obj: dict[str, Any]) -> ExistingAgent:
    """The facts plan() needs from an agent Deployment read from the cluster."""
    meta = deployment_obj.get("metadata", {})
    annotations = meta.get("annotations") or {}
    return ExistingAgent(
        name=meta.get("name", ""),
        serial=annotations.get(ANNOTATION_SERIAL, ""),
        node=annotations.get(ANNOTATION_NODE, ""),
        template_hash=annotations.get(ANNOTATION_TEMPLATE_HASH, ""),
    )


def plan(
    device: str, devices: list[models.AggregatedDevice], current: list[ExistingAgent], desired_hash: str
) -> Plan:
    """Which agents to create, replace and delete so each listed device has exactly one, on its node.

    A device listed as unavailable keeps its agent (it may come back within the grace period); a device the
    pool no longer lists (gone longer than the grace period) loses it. New agents are made only for
    available devices. Deployments of unknown serials or duplicates are deleted: no orphans.
    """
    wanted = {d.serial_number: d for d in devices}
    by_name = {agent_name(device, s): d for s, d in wanted.items()}
    create: list[models.AggregatedDevice] = []
    recreate: list[models.AggregatedDevice] = []
    delete: list[str] = []
    seen: set[str] = set()
    for agent in sorted(current, key=lambda a: a.name):
        found = by_name.get(agent.name)
        if found is None or agent.name in seen:
            delete.append(agent.name)
            continue
        seen.add(agent.name)
        moved = found.available and agent.node != found.node_name
        if moved or (found.available and agent.template_hash != desired_hash):
            recreate.append(found)
    for name, found in sorted(by_name.items()):
        if name not in seen and found.available:
            create.append(found)
    return Plan(tuple(create), tuple(recreate), tuple(delete))
