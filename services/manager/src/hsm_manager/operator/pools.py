"""Reconcile one HSMDevice: its pool, discovery DaemonSet, pool status from reports, and its agents."""

from __future__ import annotations

import base64
import datetime
import hashlib
import logging
import threading
from typing import Any

import pydantic

from hsm_common import constants, models, settings
from hsm_manager import kube
from hsm_manager.agents import pki
from hsm_manager.decide import agentspec, discoveryspec, owners, pool

from . import config, metrics

log = logging.getLogger(__name__)

TLS_ROLL_ANNOTATION = f"{constants.GROUP}/tls-issued"


class Reconciler:
    """Brings the objects of a device in line with its spec and its discovery reports."""

    def __init__(self, client: kube.Kube, ca: pki.KeyPair, cfg: config.OperatorConfig) -> None:
        self._client = client
        self._ca = ca
        self._cfg = cfg
        agent_extras, discovery_extras = cfg.agent_extras, cfg.discovery_extras
        self._agent_cfg = agentspec.AgentConfig(
            cfg.agent_image,
            cfg.agent_run_as_root,
            agent_extras.host_paths,
            agent_extras.env,
            agent_extras.read_only,
        )
        self._discovery_cfg = discoveryspec.DiscoveryConfig(
            cfg.discovery_image, discovery_extras.host_paths, discovery_extras.env, discovery_extras.read_only
        )
        # One lock per device: kopf serialises handlers per object, but pod events of a device come
        # from other objects and must not reconcile it concurrently.
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = {}

    def _lock(self, namespace: str, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((namespace, name), threading.Lock())

    def reconcile(self, device: kube.Obj) -> models.PoolPhase | None:
        """One full pass for device; returns the pool's phase."""
        meta = device["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        with self._lock(namespace, name):
            spec = models.HSMDeviceSpec.model_validate(device.get("spec") or {})
            owner = owners.device_owner(name, meta["uid"])
            self._client.ensure(pool.manifest(name, namespace, owner))
            self._ensure_daemonset(discoveryspec.daemonset(name, namespace, spec, owner, self._discovery_cfg))
            self._client.ensure(agentspec.service_account(name, namespace, owner))
            status = self._aggregate(namespace, name)
            if status is not None:
                self._agents(namespace, name, spec, owner, status.aggregated_devices)
                return status.phase
            return None

    def _ensure_daemonset(self, desired: kube.Obj) -> None:
        current = self._client.ensure(desired)
        have, want = current["spec"]["template"]["spec"], desired["spec"]["template"]["spec"]
        image_changed = have["containers"][0].get("image") != want["containers"][0]["image"]
        extras_changed = _settings_view(have) != _settings_view(want)
        if image_changed or extras_changed or have.get("nodeSelector", {}) != want["nodeSelector"]:
            desired["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self._client.replace(desired)

    def _aggregate(self, namespace: str, name: str) -> models.HSMPoolStatus | None:
        pool_name = pool.pool_name(name)
        try:
            pool_obj = self._client.get_custom(constants.KIND_POOL, namespace, pool_name)
        except kube.NotFound:
            return None
        pool_spec = models.HSMPoolSpec.model_validate(pool_obj.get("spec") or {})
        try:
            previous = models.HSMPoolStatus.model_validate(pool_obj.get("status") or {})
        except pydantic.ValidationError:
            previous = models.HSMPoolStatus()
        selector = f"{constants.LABEL_COMPONENT}={discoveryspec.COMPONENT},{constants.LABEL_DEVICE}={name}"
        pods = [
            pool.DiscoveryPod(
                p["metadata"]["name"],
                p.get("spec", {}).get("nodeName", ""),
                (p["metadata"].get("annotations") or {}).get(constants.ANNOTATION_DEVICE_REPORT),
            )
            for p in self._client.list_objects("Pod", namespace, selector)
            if not p["metadata"].get("deletionTimestamp")
        ]
        now = datetime.datetime.now(datetime.UTC)
        grace = settings.parse_duration(pool_spec.grace_period)
        status = pool.aggregate(name, pods, previous, grace, now)
        if status != previous:
            self._client.patch_status(constants.KIND_POOL, namespace, pool_name, status.to_wire())
            if status.phase != previous.phase and status.phase is not None:
                warning = status.phase in (models.PoolPhase.ERROR, models.PoolPhase.PARTIAL)
                message = status.conditions[0].message if status.conditions else ""
                self._client.event(pool_obj, f"Pool{status.phase.value}", message, warning=warning)
                log.info("pool phase changed", extra={"pool": pool_name, "phase": status.phase.value})
        for phase in models.PoolPhase:
            metrics.POOL_PHASE.labels(namespace, pool_name, phase.value).set(
                1 if phase == status.phase else 0
            )
        return status

    def _agents(
        self,
        namespace: str,
        name: str,
        spec: models.HSMDeviceSpec,
        owner: owners.Owner,
        found: list[models.AggregatedDevice],
    ) -> None:
        selector = f"{constants.LABEL_COMPONENT}={agentspec.COMPONENT},{constants.LABEL_DEVICE}={name}"
        deployments = self._client.list_objects("Deployment", namespace, selector)
        current = [agentspec.existing(d) for d in deployments]
        desired_hash = agentspec.template_hash(spec, self._agent_cfg)
        plan = agentspec.plan(name, found, current, desired_hash)
        for device in plan.create + plan.recreate:
            agent = agentspec.agent_name(name, device.serial_number)
            issued = self._tls(namespace, name, agent, owner)
            manifest = agentspec.deployment(name, namespace, spec, device, owner, self._agent_cfg)
            manifest["spec"]["template"]["metadata"]["annotations"][TLS_ROLL_ANNOTATION] = issued
            try:
                self._client.create(manifest)
                metrics.AGENT_DEPLOYMENT_CHANGES.labels("create").inc()
            except kube.Conflict:
                existing = self._client.get("Deployment", namespace, agent)
                manifest["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
                self._client.replace(manifest)
                metrics.AGENT_DEPLOYMENT_CHANGES.labels("replace").inc()
            log.info("agent deployed", extra={"agent": agent, "node": device.node_name})
        for agent in plan.delete:
            self._client.delete("Deployment", namespace, agent)
            self._client.delete("Secret", namespace, agentspec.tls_secret_name(agent))
            metrics.AGENT_DEPLOYMENT_CHANGES.labels("delete").inc()
            log.info("agent removed", extra={"agent": agent})
        for deployment in deployments:
            agent = deployment["metadata"]["name"]
            if agent not in plan.delete and not any(
                agentspec.agent_name(name, d.serial_number) == agent for d in plan.create + plan.recreate
            ):
                self._renew(namespace, name, agent, owner, deployment)

    def _tls(self, namespace: str, device: str, agent: str, owner: owners.Owner) -> str:
        """Ensure a valid serving leaf for agent; returns the certificate's fingerprint-ish stamp."""
        secret_name = agentspec.tls_secret_name(agent)
        try:
            current = self._client.get("Secret", namespace, secret_name)
            cert = base64.b64decode((current.get("data") or {}).get("tls.crt", ""))
        except kube.NotFound:
            current, cert = None, b""
        if cert and not pki.needs_renewal(cert, self._ca):
            return _stamp(cert)
        leaf = pki.issue(self._ca, agent, client=False)
        manifest = agentspec.tls_secret(device, agent, namespace, owner, leaf.cert, leaf.key, self._ca.cert)
        if current is None:
            self._client.create(manifest)
        else:
            manifest["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self._client.replace(manifest)
        return _stamp(leaf.cert)

    def _renew(
        self, namespace: str, device: str, agent: str, owner: owners.Owner, deployment: kube.Obj
    ) -> None:
        stamp = self._tls(namespace, device, agent, owner)
        template = deployment["spec"]["template"]
        annotations = template["metadata"].setdefault("annotations", {})
        if annotations.get(TLS_ROLL_ANNOTATION) != stamp:
            # A new leaf reaches the agent by restarting it (Recreate): it reads its files at start-up.
            annotations[TLS_ROLL_ANNOTATION] = stamp
            self._client.replace(deployment)
            metrics.AGENT_DEPLOYMENT_CHANGES.labels("renew").inc()


def _settings_view(pod_spec: kube.Obj) -> tuple[Any, ...]:
    """Env, mounts and volumes of a pod template, without the fields the API server fills in by default."""
    container = pod_spec["containers"][0]
    env = [(e["name"], e.get("value")) for e in container.get("env") or []]
    mounts = [
        (m["name"], m["mountPath"], bool(m.get("readOnly"))) for m in container.get("volumeMounts") or []
    ]
    volumes = [(v["name"], (v.get("hostPath") or {}).get("path")) for v in pod_spec.get("volumes") or []]
    return env, mounts, volumes


def _stamp(cert: bytes) -> str:
    return hashlib.sha256(cert).hexdigest()[:16]
