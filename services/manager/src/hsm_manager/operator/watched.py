"""What the operator's watches last delivered: HSMSecret bodies and the managed Secrets' sync state.

Passes an event started read these instead of asking the API server (one GET each for the HSMSecret and
its Secret, which at thousands of HSMSecrets were two of the five requests of a pass). Passes of the
syncInterval backstop read the API server instead, so an event the watches missed delays a sync by at
most one interval and never loses it.
"""

from __future__ import annotations

import base64
import dataclasses
import threading

from hsm_common import checksum, constants, models
from hsm_manager import kube
from hsm_manager.decide import creation, sync

Key = tuple[str, str]
"""(namespace, name)."""
GO_MANAGED_BY = ("managed-by", "hsm-secrets-operator")
"""The label (key, value) the Go hsm-secrets-operator put on every Secret it wrote."""


class HSMSecrets:
    """The latest body of every HSMSecret, as its watch delivered it (managedFields left out)."""

    def __init__(self) -> None:
        # Guards _bodies: kopf's event loop writes, sync workers read.
        self._lock = threading.Lock()
        self._bodies: dict[Key, kube.Obj] = {}

    def saw(self, obj: kube.Obj) -> bool:
        """Keep obj as the latest body; True when its uid or spec generation is new (a pass is due).

        The status patches of the passes keep the generation, so they ask for no pass.
        """
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        body = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
        with self._lock:
            before = self._bodies.get(key)
            self._bodies[key] = body
        return before is None or _incarnation(before) != _incarnation(body)

    def get(self, key: Key) -> kube.Obj | None:
        with self._lock:
            return self._bodies.get(key)

    def forget(self, key: Key) -> None:
        with self._lock:
            self._bodies.pop(key, None)


def _incarnation(obj: kube.Obj) -> tuple[str, int, bool]:
    meta = obj["metadata"]
    generation = meta.get("generation")
    # Its deletion starting asks for a pass too: a merge takes its keys back out then.
    deleting = bool(meta.get("deletionTimestamp"))
    return str(meta.get("uid")), generation if isinstance(generation, int) else 0, deleting


@dataclasses.dataclass(frozen=True)
class SecretSeen:
    """What a sync pass needs to know of a Secret; its data only as a checksum."""

    uid: str
    resource_version: str
    secret_type: str
    managed_label: bool
    go_label: bool
    """Carries the label the Go hsm-secrets-operator put on the Secrets it wrote (docs/migrating.md)."""
    owner_uids: frozenset[str]
    keys: frozenset[str]
    data_checksum: str
    """Of the keys its MAC covers (creation.ours: a merged Secret's owned keys)."""
    hsm_version: str
    immutable: bool
    labels: dict[str, str]
    annotations: dict[str, str]

    @classmethod
    def of(cls, secret: kube.Obj) -> SecretSeen:
        meta = secret.get("metadata") or {}
        labels = dict(meta.get("labels") or {})
        annotations = dict(meta.get("annotations") or {})
        data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
        return cls(
            uid=str(meta.get("uid", "")),
            resource_version=str(meta.get("resourceVersion", "")),
            secret_type=secret.get("type", "Opaque"),
            managed_label=labels.get(constants.LABEL_MANAGED_BY) == constants.MANAGED_BY_VALUE,
            go_label=labels.get(GO_MANAGED_BY[0]) == GO_MANAGED_BY[1],
            owner_uids=frozenset(str(ref.get("uid")) for ref in meta.get("ownerReferences") or []),
            keys=frozenset(data),
            data_checksum=checksum.checksum(creation.ours(data, annotations)),
            hsm_version=annotations.get(constants.ANNOTATION_HSM_VERSION, ""),
            immutable=bool(secret.get("immutable")),
            labels=labels,
            annotations=annotations,
        )

    def state(self, owner_uid: str, owner_name: str, policy: models.CreationPolicy) -> sync.SecretState:
        """The Secret as the decision sees it, for the HSMSecret (owner_name, owner_uid) of policy."""
        claim = creation.claim(
            policy,
            owner_name,
            owner_uid,
            # A Secret the Go operator wrote for this same HSMSecret (its owner reference names it) was this
            # HSMSecret's all along: taken over, so that a migration keeps the Secrets it had.
            ours=self.managed_label or self.go_label,
            owner_uids=self.owner_uids,
            labels=self.labels,
        )
        # Under Merge, a Secret holds nothing of ours until it records which keys are ours.
        merged = constants.ANNOTATION_OWNED_KEYS in self.annotations
        recorded = policy != models.CreationPolicy.MERGE or merged
        return sync.SecretState(
            exists=True,
            managed=claim.managed,
            owner_referenced=claim.owner_referenced,
            secret_type=self.secret_type,
            data_checksum=self.data_checksum if recorded else checksum.checksum({}),
            hsm_version=self.hsm_version,
            immutable=self.immutable,
            labels=self.labels,
            annotations=self.annotations,
        )


class ManagedSecrets:
    """The Secrets carrying an HSMSecret's label (written or merged into), from their informer and our own
    writes.

    A Secret missing here may still exist without the label (not ours): a pass that creates it then gets a
    Conflict and reads the API server's copy.
    """

    def __init__(self) -> None:
        # Guards _seen: kopf's event loop and the sync workers write, sync workers read.
        self._lock = threading.Lock()
        self._seen: dict[Key, SecretSeen] = {}

    def saw(self, secret: kube.Obj) -> None:
        meta = secret["metadata"]
        seen = SecretSeen.of(secret)
        with self._lock:
            self._seen[(meta["namespace"], meta["name"])] = seen

    def gone(self, namespace: str, name: str) -> None:
        with self._lock:
            self._seen.pop((namespace, name), None)

    def get(self, namespace: str, name: str) -> SecretSeen | None:
        with self._lock:
            return self._seen.get((namespace, name))
