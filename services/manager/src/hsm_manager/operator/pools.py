"""Reconcile one HSMDevice: its pool, discovery DaemonSet, pool status (reports, capacity, the Nodes' counts
of its resource), and its agents."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import threading
from typing import Any

import pydantic

from hsm_common import constants, models, settings
from hsm_manager import kube
from hsm_manager.decide import (
    admission,
    agentreach,
    agentspec,
    capacity,
    conditions,
    discoveryspec,
    model,
    nodes,
    owners,
    pool,
)
from hsm_manager.gateway import castore, endpoints, pki
from hsm_manager.gateway import errors as agent_errors

from . import config, metrics

log = logging.getLogger(__name__)

#: The reason of the Warning event that says agents on a node cannot get their devices.
PLUGIN_WARNING = "DevicePluginNotReady"


@dataclasses.dataclass(frozen=True)
class Answers:
    """What the Ready agents of a device said when asked how full their tokens are."""

    capacities: dict[str, models.DeviceCapacity]
    """By serial, of the agents that answered with figures."""
    unanswered: list[agentreach.Unanswered]


class Reconciler:
    """Brings the objects of a device in line with its spec and its discovery reports."""

    def __init__(
        self,
        client: kube.Kube,
        authority: castore.Holder,
        cfg: config.OperatorConfig,
        directory: endpoints.Directory,
    ) -> None:
        self._client = client
        self._authority = authority
        self._directory = directory
        self._agent_cfg = agentspec.AgentConfig(
            cfg.agent_image, cfg.agent_run_as_root, cfg.device_mounts, cfg.device_env
        )
        extras = cfg.discovery_extras
        self._discovery_cfg = discoveryspec.DiscoveryConfig(
            cfg.discovery_image,
            host_paths=extras.host_paths,
            env=extras.env,
            read_only=extras.read_only,
            device_plugin_dir=cfg.device_plugin_dir,
            device_node_root=cfg.device_node_root,
            device_mounts=cfg.device_mounts,
            device_env=cfg.device_env,
        )
        # One lock per device: kopf serialises handlers per object, but pod events of a device come
        # from other objects and must not reconcile it concurrently.
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        # UIDs of deleted devices: a pass begun from an older copy of one must not recreate its objects.
        self._deleted: set[str] = set()

    def _lock(self, namespace: str, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((namespace, name), threading.Lock())

    def reconcile(self, device: kube.Obj, refresh: bool = False) -> models.PoolPhase | None:
        """One full pass for device; returns the pool's phase.

        refresh: read the figures no event brings, how full the agents' tokens are and the Nodes' counts
        of the device's resource, and clear agent pods a kubelet refused (the periodic pass does; pod
        events, which come every few seconds, keep the figures the pool already shows).
        """
        meta = device["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        spec = models.HSMDeviceSpec.model_validate(device.get("spec") or {})
        answers = self._ask_agents(namespace, name) if refresh else None
        resources = self._node_resources(name, spec) if refresh else None
        with self._lock(namespace, name):
            if meta["uid"] in self._deleted:
                return None
            owner = owners.device_owner(name, meta["uid"])
            self._client.ensure(pool.manifest(name, namespace, owner))
            self._ensure_daemonset(discoveryspec.daemonset(name, namespace, spec, owner, self._discovery_cfg))
            self._client.ensure(agentspec.service_account(name, namespace, owner))
            status = self._aggregate(namespace, name, answers, resources)
            if refresh:
                self._clear_refused(namespace, name)
            if status is not None:
                self._agents(namespace, name, spec, owner, status.aggregated_devices)
                return status.phase
            return None

    def forget(self, namespace: str, name: str, uid: str) -> None:
        """Delete what a deleted device owned: its pool, discovery DaemonSet, agents and their certificates.

        Their ownerReferences would have the garbage collector do it too, but it learns of a new kind
        only on its next discovery pass (every 30 s) and retries what it could not map with a growing
        back-off, so a device deleted soon after the CRDs were installed could keep its agents for minutes.
        Only objects this incarnation of the device owns are deleted: a device recreated under the same name
        keeps its own.
        """
        with self._lock(namespace, name):
            self._deleted.add(uid)
            selector = f"{constants.LABEL_COMPONENT}={agentspec.COMPONENT},{constants.LABEL_DEVICE}={name}"
            owned = [
                (kind, obj["metadata"])
                for kind in ("Deployment", "Secret")
                for obj in self._client.list_objects(kind, namespace, selector)
            ]
            for kind, child in (
                ("HSMPool", pool.pool_name(name)),
                ("DaemonSet", discoveryspec.name(name)),
                ("ServiceAccount", agentspec.service_account_name(name)),
            ):
                with contextlib.suppress(kube.NotFound):
                    owned.append((kind, self._client.get(kind, namespace, child)["metadata"]))
            for kind, meta in owned:
                if any(ref.get("uid") == uid for ref in meta.get("ownerReferences") or []):
                    self._client.delete(kind, namespace, meta["name"], uid=meta["uid"])
        log.info("device objects removed", extra={"device": name, "objects": len(owned)})

    def _ensure_daemonset(self, desired: kube.Obj) -> None:
        current = self._client.ensure(desired)
        have, want = current["spec"]["template"]["spec"], desired["spec"]["template"]["spec"]
        image_changed = have["containers"][0].get("image") != want["containers"][0]["image"]
        extras_changed = _settings_view(have) != _settings_view(want)
        if image_changed or extras_changed or have.get("nodeSelector", {}) != want["nodeSelector"]:
            desired["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self._client.replace(desired)

    def _ask_agents(self, namespace: str, device: str) -> Answers | None:
        """How full each Ready agent's token is, by serial, and the agents that did not answer.

        None when the agents cannot even be listed: the pool then keeps what it shows.
        """
        now = datetime.datetime.now(datetime.UTC)
        try:
            agents = self._directory.endpoints(namespace, device)
        except kube.KubeError as error:
            log.warning("capacity_unread", extra={"device": device, "error": str(error)})
            return None
        answers = Answers({}, [])
        for endpoint in agents:
            try:
                info = self._directory.client(endpoint).info()
            except agent_errors.AgentCallError as error:
                log.warning("capacity_unread", extra={"agent": endpoint.name, "error": type(error).__name__})
                untrusted = isinstance(error, agent_errors.Untrusted)
                reason = error.message if untrusted else f"does not answer ({error.summary})"
                answers.unanswered.append(agentreach.Unanswered(endpoint.name, reason, untrusted))
                continue
            except kube.KubeError as error:  # the manager's own client certificate unread: not the agent's
                log.warning("capacity_unread", extra={"agent": endpoint.name, "error": type(error).__name__})
                continue
            if info.capacity is not None:
                answers.capacities[endpoint.serial] = _capacity(info.capacity, now)
        return answers

    def _node_resources(
        self, device: str, spec: models.HSMDeviceSpec
    ) -> dict[str, nodes.NodeResource] | None:
        """What each Node the device's discovery may run on says of its resource; None when unread."""
        selector = ",".join(f"{key}={value}" for key, value in sorted(spec.node_selector.items()))
        try:
            found = self._client.list_objects("Node", None, selector)
        except kube.KubeError as error:
            log.warning("nodes_unread", extra={"device": device, "error": str(error)})
            return None
        resource = constants.resource_name(device)
        return {node["metadata"]["name"]: nodes.resource_of(node, resource) for node in found}

    def _aggregate(
        self,
        namespace: str,
        name: str,
        answers: Answers | None,
        resources: dict[str, nodes.NodeResource] | None,
    ) -> models.HSMPoolStatus | None:
        pool_name = pool.pool_name(name)
        try:
            pool_obj = self._client.get(constants.KIND_POOL, namespace, pool_name)
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
        status = pool.aggregate(
            name,
            pods,
            previous,
            grace,
            now,
            answers.capacities if answers else None,
            resources,
            answers.unanswered if answers else None,
        )
        if status != previous:
            self._client.patch_status(constants.KIND_POOL, namespace, pool_name, status.to_wire())
            if status.phase != previous.phase and status.phase is not None:
                warning = status.phase in (models.PoolPhase.ERROR, models.PoolPhase.PARTIAL)
                ready = next((c for c in status.conditions if c.type == conditions.READY), None)
                message = ready.message if ready else ""
                self._client.event(pool_obj, f"Pool{status.phase.value}", message, warning=warning)
                log.info("pool phase changed", extra={"pool": pool_name, "phase": status.phase.value})
            refused = agentreach.warning(previous.conditions, status.conditions)
            if refused is not None:
                self._client.event(pool_obj, agentreach.CONDITION, refused, warning=True)
            low = capacity.warning(previous.conditions, status.conditions)
            if low is not None:
                self._client.event(pool_obj, capacity.CONDITION, low, warning=True)
                log.warning("capacity_low", extra={"pool": pool_name, "detail": low})
            for problem in nodes.warnings(previous.nodes, status.nodes, constants.resource_name(name)):
                self._client.event(pool_obj, PLUGIN_WARNING, problem, warning=True)
                log.warning("device_plugin_not_ready", extra={"pool": pool_name, "detail": problem})
        for phase in models.PoolPhase:
            metrics.POOL_PHASE.labels(namespace, pool_name, phase.value).set(
                1 if phase == status.phase else 0
            )
        _capacity_metrics(namespace, pool_name, previous, status)
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
        desired_hash = agentspec.template_hash(name, spec, self._agent_cfg)
        plan = agentspec.plan(name, found, current, desired_hash)
        for device in plan.create + plan.recreate:
            agent = agentspec.agent_name(name, device.serial_number)
            self._tls(namespace, name, agent, owner)
            manifest = agentspec.deployment(name, namespace, spec, device, owner, self._agent_cfg)
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
                # The agent re-reads its mounted Secret when the kubelet swaps it: a renewal restarts nothing.
                self._tls(namespace, name, agent, owner)

    def _clear_refused(self, namespace: str, name: str) -> None:
        """Delete the agent pods a kubelet refused at admission (their Deployment already replaced them)."""
        selector = f"{constants.LABEL_COMPONENT}={agentspec.COMPONENT},{constants.LABEL_DEVICE}={name}"
        for pod, uid in admission.refused(self._client.list_objects("Pod", namespace, selector)):
            self._client.delete("Pod", namespace, pod, uid=uid or None)
            log.info("refused agent pod removed", extra={"pod": pod, "reason": admission.REFUSED})

    def _tls(self, namespace: str, device: str, agent: str, owner: owners.Owner) -> None:
        """Ensure agent's Secret holds a valid serving leaf of the signing CA and the current trust bundle."""
        secret_name = agentspec.tls_secret_name(agent)
        try:
            current: kube.Obj | None = self._client.get("Secret", namespace, secret_name)
        except kube.NotFound:
            current = None
        held = pki.secret_data(current) if current is not None else {}
        authority = self._authority.current()
        wanted = castore.leaf_data(authority, agent, held, client=False)
        if wanted is None:
            return
        manifest = agentspec.tls_secret(
            device, agent, namespace, owner, wanted["tls.crt"], wanted["tls.key"], wanted["ca.crt"]
        )
        if current is None:
            self._client.create(manifest)
        else:
            manifest["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self._client.replace(manifest)


def _capacity(figures: model.Capacity, now: datetime.datetime) -> models.DeviceCapacity:
    return models.DeviceCapacity(
        max_objects=figures.max_objects,
        used_objects=figures.used_objects,
        free_objects=figures.free_objects,
        own_objects=figures.own_objects,
        own_bytes=figures.own_bytes,
        total_memory=figures.total_memory,
        free_memory=figures.free_memory,
        observed_at=now,
    )


def _capacity_metrics(
    namespace: str, pool_name: str, previous: models.HSMPoolStatus, status: models.HSMPoolStatus
) -> None:
    shown = {d.serial_number: d.capacity for d in status.aggregated_devices if d.capacity is not None}
    for serial, figures in shown.items():
        metrics.DEVICE_OBJECTS_USED.labels(namespace, pool_name, serial).set(figures.used_objects)
        metrics.DEVICE_OBJECTS_MAX.labels(namespace, pool_name, serial).set(figures.max_objects)
    for device in previous.aggregated_devices:
        if device.capacity is not None and device.serial_number not in shown:
            # Figures nobody reports any more would read as current.
            for gauge in (metrics.DEVICE_OBJECTS_USED, metrics.DEVICE_OBJECTS_MAX):
                with contextlib.suppress(KeyError):
                    gauge.remove(namespace, pool_name, device.serial_number)


def _settings_view(pod_spec: kube.Obj) -> tuple[Any, ...]:
    """Env, mounts and volumes of a pod template, without the fields the API server fills in by default."""
    container = pod_spec["containers"][0]
    env = [(e["name"], e.get("value")) for e in container.get("env") or []]
    mounts = [
        (m["name"], m["mountPath"], bool(m.get("readOnly"))) for m in container.get("volumeMounts") or []
    ]
    volumes = [(v["name"], (v.get("hostPath") or {}).get("path")) for v in pod_spec.get("volumes") or []]
    return env, mounts, volumes
