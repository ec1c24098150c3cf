"""In-memory stand-ins for the manager's two gateways: the agents (AgentClient, Directory) and Kubernetes.

They keep the rules callers rely on (an agent's compare-and-set and tombstones, the API server's
NotFound/Conflict and resourceVersions), so service and operator code runs against them unchanged.
Import them with ``from .. import fakes`` (pytest resolves test packages from the repository root).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import itertools
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from hsm_common import checksum, constants
from hsm_manager import kube
from hsm_manager.decide import model
from hsm_manager.gateway import client, errors
from hsm_manager.gateway import endpoints as agent_endpoints

Stored = tuple[model.PathState, dict[str, bytes], model.Metadata]
"""What a fake device holds for one path: its index entry, its data and its metadata."""


class _Clock:
    """Strictly increasing RFC 3339 times shared by every fake agent, so copies order by write time."""

    def __init__(self) -> None:
        # Guards _last: fake agents write from several test and worker threads.
        self._lock = threading.Lock()
        self._last = datetime.datetime.now(datetime.UTC)

    def now(self) -> str:
        with self._lock:
            now = datetime.datetime.now(datetime.UTC)
            self._last = max(now, self._last + datetime.timedelta(microseconds=1))
            return self._last.isoformat(timespec="microseconds").replace("+00:00", "Z")


CLOCK = _Clock()


class FakeWatch:
    """A watch stream: the snapshot, then every change pushed until cancelled or broken."""

    def __init__(self, snapshot: list[model.Event]) -> None:
        self._events: queue.Queue[model.Event | errors.AgentCallError | None] = queue.Queue()
        for event in snapshot:
            self._events.put(event)
        self.cancelled = False

    def push(self, event: model.Event) -> None:
        self._events.put(event)

    def fail(self, error: errors.AgentCallError) -> None:
        """End the stream with error, as a real one ends when its agent goes away."""
        self._events.put(error)

    def __iter__(self) -> Iterator[model.Event]:
        while (event := self._events.get()) is not None:
            if isinstance(event, errors.AgentCallError):
                raise event
            yield event

    def cancel(self) -> None:
        self.cancelled = True
        self._events.put(None)


class FakeAgentClient:
    """One agent over a dict of paths, with the real agent's version rules (AgentClient)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self.paths: dict[str, Stored] = {}
        self.down = False
        """When set, every call fails with errors.Unavailable (the agent is unreachable)."""
        self.failures: dict[str, errors.AgentCallError] = {}
        """Method name → the error that method raises (one failing call kind)."""
        self.capacity: model.Capacity | None = None
        self.pin = "1234"
        self.calls: list[str] = []
        # Guards paths and watches: callers write from several threads, like a real agent's clients.
        self._lock = threading.RLock()
        self._watches: list[FakeWatch] = []

    @property
    def name(self) -> str:
        return self._name

    def put(self, path: str, data: Mapping[str, bytes], state: model.PathState) -> None:
        """Make the device hold exactly state for path (a test's given), checksum derived from data."""
        stored = dataclasses.replace(state, checksum="" if state.deleted else checksum.checksum(data))
        with self._lock:
            self.paths[path] = (stored, dict(data), model.Metadata())

    def go_down(self) -> None:
        """The agent becomes unreachable: calls fail and its watch streams end."""
        with self._lock:
            self.down = True
            for watch in self._watches:
                watch.fail(errors.Unavailable(self._name, "agent unreachable"))
            self._watches.clear()

    def _enter(self, method: str) -> None:
        self.calls.append(method)
        if self.down:
            raise errors.Unavailable(self._name, "agent unreachable")
        if method in self.failures:
            raise self.failures[method]

    def entries(
        self, prefix: str, include_deleted: bool, *, after: str = "", limit: int = 0
    ) -> list[model.Entry]:
        self._enter("entries")
        with self._lock:
            found = [
                model.Entry(path, state, tuple(sorted(data)))
                for path, (state, data, _) in sorted(self.paths.items())
                if path.startswith(prefix) and path > after and (include_deleted or not state.deleted)
            ]
        return found[:limit] if limit else found

    def state(self, path: str, *, copy: bool = True) -> model.PathState:
        self._enter("state")
        with self._lock:
            stored = self.paths.get(path)
            return stored[0] if stored else model.ABSENT

    def _live(self, path: str) -> Stored:
        stored = self.paths.get(path)
        if stored is None or stored[0].deleted:
            raise errors.NotFound(self._name, f"no secret at {path!r}")
        return stored

    def read(self, path: str) -> model.Secret:
        self._enter("read")
        with self._lock:
            state, data, metadata = self._live(path)
            return model.Secret(path, state.version, state.checksum, dict(data), metadata)

    def metadata(self, path: str) -> tuple[model.Entry, model.Metadata]:
        self._enter("metadata")
        with self._lock:
            state, data, metadata = self._live(path)
            return model.Entry(path, state, tuple(sorted(data))), metadata

    def _next_version(self, path: str, expected: int | None, version: int) -> int:
        current = self.paths.get(path, (model.ABSENT, {}, model.Metadata()))[0].version
        if expected is not None and expected != current:
            raise errors.Conflict(self._name, f"{path!r} is at version {current}, not {expected}")
        if version:
            if version <= current:
                raise errors.Conflict(self._name, f"version {version} of {path!r} does not exceed {current}")
            return version
        return current + 1

    def _store(self, path: str, state: model.PathState, data: dict[str, bytes], meta: model.Metadata) -> None:
        self.paths[path] = (state, data, meta)
        kind = model.EventKind.DELETED if state.deleted else model.EventKind.CHANGED
        event = model.Event(kind, path, state.version, state.checksum, state.deleted)
        for watch in self._watches:
            watch.push(event)

    def write(
        self,
        path: str,
        data: Mapping[str, bytes],
        metadata: model.Metadata | None,
        *,
        expected: int | None = None,
        version: int = 0,
        writer: str = "",
    ) -> int:
        self._enter("write")
        with self._lock:
            new_version = self._next_version(path, expected, version)
            current = self.paths.get(path)
            live = current is not None and not current[0].deleted
            if metadata is None:
                metadata = current[2] if current else model.Metadata()
            if not metadata.created_at:
                # The agent owns created_at: kept across updates, set on creation.
                kept = current[2].created_at if current and live else ""
                metadata = dataclasses.replace(metadata, created_at=kept or CLOCK.now())
            state = model.PathState(
                new_version, checksum.checksum(data), False, CLOCK.now(), writer or self._name
            )
            self._store(path, state, dict(data), metadata)
            return new_version

    def delete(
        self, path: str, *, key: str = "", expected: int | None = None, version: int = 0, writer: str = ""
    ) -> int:
        self._enter("delete")
        with self._lock:
            new_version = self._next_version(path, expected, version)
            current = self.paths.get(path)
            live = current is not None and not current[0].deleted
            # An explicit version (mirroring) tombstones even an unknown path, so it cannot come back.
            if not live and (key or not version):
                raise errors.NotFound(self._name, f"no secret at {path!r}")
            if key:
                assert current is not None
                if key not in current[1]:
                    raise errors.NotFound(self._name, f"secret {path!r} has no key {key!r}")
                if len(current[1]) > 1:
                    data = {k: v for k, v in current[1].items() if k != key}
                    state = model.PathState(
                        new_version, checksum.checksum(data), False, CLOCK.now(), writer or self._name
                    )
                    self._store(path, state, data, current[2])
                    return new_version
            tomb = model.PathState(new_version, "", True, CLOCK.now(), writer or self._name)
            self._store(path, tomb, {}, model.Metadata())
            return new_version

    def info(self) -> model.DeviceInfo:
        self._enter("info")
        with self._lock:
            live = sum(1 for state, _, _ in self.paths.values() if state.live)
        return model.DeviceInfo("fake", "fake", "fake", self._name, "1", 4096, live, self.capacity)

    def health(self, wait: bool = False) -> model.Health:
        self._enter("health")
        return model.Health(connected=True, status="SERVING", message="")

    def change_pin(self, old_pin: str, new_pin: str) -> None:
        self._enter("change_pin")
        if old_pin != self.pin:
            raise errors.PinRejected(self._name, "the token refused the PIN")
        self.pin = new_pin

    def import_legacy(self, request: client.LegacyImportRequest) -> client.LegacyImport:
        """A token that holds no legacy object: an empty plan (importing it changes nothing)."""
        self._enter("import_legacy")
        return client.LegacyImport(0, (), (), (), request.apply)

    def watch(self) -> FakeWatch:
        self._enter("watch")
        with self._lock:
            snapshot = [
                model.Event(model.EventKind.SNAPSHOT, path, state.version, state.checksum, state.deleted)
                for path, (state, _, _) in sorted(self.paths.items())
            ]
            stream = FakeWatch([*snapshot, model.Event(model.EventKind.SNAPSHOT_END)])
            self._watches.append(stream)
            return stream


class FakeDirectory:
    """Agents by device (a gateway Directory): add them, then hand the directory to the code under test."""

    def __init__(self) -> None:
        self.clients: dict[str, FakeAgentClient] = {}
        self._endpoints: list[agent_endpoints.AgentEndpoint] = []
        self.invalidated = 0
        self.closed = False
        self.not_ready: set[tuple[str, str]] = set()

    def add(
        self, device: str, agent: FakeAgentClient | str, namespace: str = "ns", serial: str = ""
    ) -> FakeAgentClient:
        """Make agent (or a new FakeAgentClient of that name) a reachable agent of device; returns it."""
        fake = FakeAgentClient(agent) if isinstance(agent, str) else agent
        self.clients[fake.name] = fake
        endpoint = agent_endpoints.AgentEndpoint(
            device, namespace, fake.name, serial or fake.name, "node-" + fake.name, f"{fake.name}:9090"
        )
        self._endpoints = sorted([*self._endpoints, endpoint], key=lambda e: (e.device, e.name))
        return fake

    def remove(self, name: str) -> None:
        """The agent's pod is gone: it is no longer listed."""
        self._endpoints = [e for e in self._endpoints if e.name != name]

    def unready(self, name: str) -> None:
        """The agent's pod is there but not Ready: only its device stays known."""
        gone = [e for e in self._endpoints if e.name == name]
        self.remove(name)
        self.not_ready |= {(e.namespace, e.device) for e in gone}

    def devices(self, namespace: str) -> list[str]:
        return sorted({e.device for e in self.endpoints(namespace)})

    def deployed(self, namespace: str) -> list[str]:
        return sorted({*self.devices(namespace), *(d for ns, d in self.not_ready if ns == namespace)})

    def endpoints(self, namespace: str, device: str | None = None) -> list[agent_endpoints.AgentEndpoint]:
        return [
            e for e in self._endpoints if e.namespace == namespace and (device is None or e.device == device)
        ]

    def client(self, endpoint: agent_endpoints.AgentEndpoint) -> client.AgentClient:
        return self.clients[endpoint.name]

    def invalidate(self) -> None:
        self.invalidated += 1

    def close(self) -> None:
        self.closed = True


_CUSTOM_KINDS = {constants.KIND_SECRET, constants.KIND_DEVICE, constants.KIND_POOL}


@dataclasses.dataclass(frozen=True)
class RecordedEvent:
    kind: str
    name: str
    reason: str
    message: str
    warning: bool


class FakeKube:
    """The API server's objects in a dict, with the methods of hsm_manager.kube.Kube the manager uses."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], kube.Obj] = {}
        self.events: list[RecordedEvent] = []
        self.failures: dict[str, kube.KubeError] = {}
        """Method name → the error that method raises (the API server refusing one kind of call)."""
        self.calls: list[tuple[str, str, str]] = []
        """(method, kind, name) of every change made."""
        self.list_delay: dict[str, float] = {}
        """Kind → seconds a full list of it takes (a slow API server)."""
        self.reads: list[tuple[str, str, str]] = []
        """("get", kind, name) of every object read one by one."""
        # Guards objects: sync workers and handler threads share one client.
        self._lock = threading.RLock()
        self._versions = itertools.count(1)

    def _enter(self, method: str) -> None:
        if method in self.failures:
            raise self.failures[method]

    def _stamp(self, obj: kube.Obj) -> None:
        obj["metadata"]["resourceVersion"] = str(next(self._versions))

    def add(self, obj: kube.Obj) -> kube.Obj:
        """Put obj in the store as it is (a test's given); returns the stored copy.

        A cluster-scoped object (a Node) has no namespace: it is stored under "".
        """
        meta = obj["metadata"]
        stored = copy.deepcopy(obj)
        stored["metadata"].setdefault("uid", f"uid-{meta['name']}")
        stored["metadata"].setdefault("generation", 1)
        self._stamp(stored)
        with self._lock:
            self.objects[(obj["kind"], meta.get("namespace", ""), meta["name"])] = stored
        return copy.deepcopy(stored)

    def stored(self, kind: str, namespace: str, name: str) -> kube.Obj | None:
        """What the store holds (None when absent), without going through the API methods."""
        with self._lock:
            found = self.objects.get((kind, namespace, name))
            return copy.deepcopy(found) if found is not None else None

    def get(self, kind: str, namespace: str, name: str) -> kube.Obj:
        self._enter("get")
        with self._lock:
            self.reads.append(("get", kind, name))
        found = self.stored(kind, namespace, name)
        if found is None:
            raise kube.NotFound(f"get {kind} {namespace}/{name}: 404 Not Found", 404)
        return found

    def create(self, obj: kube.Obj) -> kube.Obj:
        self._enter("create")
        meta = obj["metadata"]
        key = (obj["kind"], meta["namespace"], meta["name"])
        with self._lock:
            if key in self.objects:
                raise kube.Conflict(f"create {key}: 409 AlreadyExists", 409)
            self.calls.append(("create", obj["kind"], meta["name"]))
            stored = copy.deepcopy(obj)
            stored["metadata"]["uid"] = f"uid-{meta['name']}-{next(self._versions)}"
            stored["metadata"]["generation"] = 1
            self._stamp(stored)
            self.objects[key] = stored
            return copy.deepcopy(stored)

    def replace(self, obj: kube.Obj) -> kube.Obj:
        self._enter("replace")
        meta = obj["metadata"]
        key = (obj["kind"], meta["namespace"], meta["name"])
        with self._lock:
            current = self.objects.get(key)
            if current is None:
                raise kube.NotFound(f"replace {key}: 404 Not Found", 404)
            wanted = meta.get("resourceVersion")
            if wanted and wanted != current["metadata"]["resourceVersion"]:
                raise kube.Conflict(f"replace {key}: 409 Conflict", 409)
            if obj["kind"] == "Secret" and _unchangeable(current, obj):
                raise kube.KubeError(f"replace {key}: 422 Unprocessable Entity", 422)
            self.calls.append(("replace", obj["kind"], meta["name"]))
            stored = copy.deepcopy(obj)
            stored["metadata"]["uid"] = current["metadata"]["uid"]
            stored["metadata"]["generation"] = current["metadata"].get("generation", 1)
            if "status" in current and obj["kind"] in _CUSTOM_KINDS:
                stored["status"] = current["status"]
            self._stamp(stored)
            self.objects[key] = stored
            return copy.deepcopy(stored)

    def delete(self, kind: str, namespace: str, name: str, uid: str | None = None) -> None:
        self._enter("delete")
        with self._lock:
            current = self.objects.get((kind, namespace, name))
            if current is None or (uid and current["metadata"]["uid"] != uid):
                return
            self.calls.append(("delete", kind, name))
            del self.objects[(kind, namespace, name)]

    def ensure(self, obj: kube.Obj) -> kube.Obj:
        try:
            return self.create(obj)
        except kube.Conflict:
            meta = obj["metadata"]
            return self.get(obj["kind"], meta["namespace"], meta["name"])

    def list_objects(self, kind: str, namespace: str | None, label_selector: str) -> list[kube.Obj]:
        self._enter("list_objects")
        with self._lock:
            return [
                copy.deepcopy(obj)
                for (k, ns, _), obj in sorted(self.objects.items(), key=lambda item: item[0])
                if k == kind and (namespace is None or ns == namespace) and _selects(label_selector, obj)
            ]

    def list_custom(self, kind: str, namespace: str | None = None) -> list[kube.Obj]:
        self._enter("list_custom")
        with self._lock:
            return [
                copy.deepcopy(obj)
                for (k, ns, _), obj in sorted(self.objects.items(), key=lambda item: item[0])
                if k == kind and (namespace is None or ns == namespace)
            ]

    def list_all(self, kind: str, label_selector: str = "") -> tuple[list[kube.Obj], str]:
        self._enter("list_all")
        time.sleep(self.list_delay.get(kind, 0.0))
        with self._lock:
            found = [
                copy.deepcopy(obj)
                for (k, _, _), obj in sorted(self.objects.items(), key=lambda item: item[0])
                if k == kind and _selects(label_selector, obj)
            ]
        return found, "1"

    def watch(
        self, kind: str, label_selector: str, resource_version: str, seconds: int
    ) -> Iterator[kube.Obj]:
        """No events: tests hand the runtime's triggers the events they mean (a short wait, not a spin)."""
        self._enter("watch")
        time.sleep(0.05)
        return iter(())

    def patch_status(self, kind: str, namespace: str, name: str, status: kube.Obj) -> kube.Obj:
        self._enter("patch_status")
        with self._lock:
            current = self.objects.get((kind, namespace, name))
            if current is None:
                raise kube.NotFound(f"patch status of {kind} {namespace}/{name}: 404 Not Found", 404)
            self.calls.append(("patch_status", kind, name))
            current["status"] = _merge(current.get("status") or {}, status)
            self._stamp(current)
            return copy.deepcopy(current)

    def patch(self, kind: str, namespace: str, name: str, patch: kube.Obj) -> kube.Obj:
        """A Secret's strategic merge patch (owner references merged by uid) or an HSMSecret's merge patch;
        an HSMSecret being deleted goes once its last finalizer does."""
        self._enter("patch")
        key = (kind, namespace, name)
        with self._lock:
            current = self.objects.get(key)
            if current is None:
                raise kube.NotFound(f"patch {kind} {namespace}/{name}: 404 Not Found", 404)
            patch = copy.deepcopy(patch)
            meta = patch.get("metadata") or {}
            wanted = meta.pop("resourceVersion", None)
            if wanted and wanted != current["metadata"]["resourceVersion"]:
                raise kube.Conflict(f"patch {kind} {namespace}/{name}: 409 Conflict", 409)
            refs = meta.pop("ownerReferences", None)
            self.calls.append(("patch", kind, name))
            patched = _merge(current, patch)
            if refs is not None:
                gone = {ref["uid"] for ref in refs if ref.get("$patch") == "delete"}
                kept = [r for r in patched["metadata"].get("ownerReferences") or [] if r["uid"] not in gone]
                added = [ref for ref in refs if ref.get("$patch") != "delete"]
                patched["metadata"]["ownerReferences"] = kept + added
            if patched["metadata"].get("deletionTimestamp") and not patched["metadata"].get("finalizers"):
                del self.objects[key]
                return copy.deepcopy(patched)
            self._stamp(patched)
            self.objects[key] = patched
            return copy.deepcopy(patched)

    def patch_workload(self, kind: str, namespace: str, name: str, patch: kube.Obj) -> kube.Obj:
        self._enter("patch_workload")
        with self._lock:
            current = self.objects.get((kind, namespace, name))
            if current is None:
                raise kube.NotFound(f"patch {kind} {namespace}/{name}: 404 Not Found", 404)
            self.calls.append(("patch_workload", kind, name))
            self.objects[(kind, namespace, name)] = _merge(current, patch)
            self._stamp(self.objects[(kind, namespace, name)])
            return copy.deepcopy(self.objects[(kind, namespace, name)])

    def event(self, involved: kube.Obj, reason: str, message: str, warning: bool = False) -> None:
        with self._lock:
            self.events.append(
                RecordedEvent(involved["kind"], involved["metadata"]["name"], reason, message, warning)
            )

    def reasons(self) -> list[str]:
        """The reasons of the events recorded, in order."""
        with self._lock:
            return [event.reason for event in self.events]


def _selects(selector: str, obj: kube.Obj) -> bool:
    """obj's labels match a selector of key=value and key (exists) terms."""
    labels = obj["metadata"].get("labels") or {}
    for term in filter(None, selector.split(",")):
        name, _, value = term.partition("=")
        if name not in labels or ("=" in term and labels[name] != value):
            return False
    return True


def _unchangeable(current: kube.Obj, new: kube.Obj) -> bool:
    """The API server refuses this replace of a Secret: a new type, or an immutable Secret's data changed
    or made mutable."""
    if current.get("type", "Opaque") != new.get("type", "Opaque"):
        return True
    return bool(current.get("immutable")) and (
        current.get("data") != new.get("data") or not new.get("immutable")
    )


def _merge(current: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386): null removes a field, objects merge, anything else replaces."""
    merged = copy.deepcopy(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
