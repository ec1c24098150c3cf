"""Sync passes of HSMSecrets of creationPolicy Orphan and Merge, against in-memory agents and API server."""

from __future__ import annotations

import base64
from typing import Any

from hsm_common import constants
from hsm_manager import kube
from hsm_manager.operator import merging, runtime, triggers

from .. import fakes
from . import stored
from .conftest import APP_NS, hsmsecret

KEY = (APP_NS, "db")
PATH = f"{APP_NS}/db"
CREDENTIALS = {"username": b"alice", "password": b"s3cret"}


def write(directory: fakes.FakeDirectory, values: dict[str, bytes]) -> None:
    directory.clients["hsm-a"].write(PATH, values, None)


def ready_reason(cluster: fakes.FakeKube) -> str:
    return str(next(c["reason"] for c in stored.status(cluster)["conditions"] if c["type"] == "Ready"))


def foreign_secret(cluster: fakes.FakeKube, **extra: Any) -> None:
    """The Secret a Helm chart made, with a key of its own."""
    cluster.add(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": "db",
                "namespace": APP_NS,
                "labels": {constants.LABEL_MANAGED_BY: "Helm"},
                "annotations": {"meta.helm.sh/release-name": "app"},
            },
            "data": {"config": base64.b64encode(b"debug=false").decode()},
            **extra,
        }
    )


def edit(cluster: fakes.FakeKube, key: str, value: bytes) -> None:
    """Another controller writes key into the Secret."""
    edited = stored.secret(cluster)
    edited["data"][key] = base64.b64encode(value).decode()
    cluster.add(edited)


def delete_hsmsecret(cluster: fakes.FakeKube) -> None:
    """What the API server does on a delete of an HSMSecret with finalizers: mark it."""
    found = cluster.stored(constants.KIND_SECRET, APP_NS, "db")
    assert found is not None
    found["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    cluster.add(found)


# ---------------------------------------------------------------- Owner and Orphan


def test_an_owner_secret_references_its_hsmsecret(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret())
    write(directory, CREDENTIALS)
    assert rt.syncer.run(KEY) == "written"
    [ref] = stored.secret(cluster)["metadata"]["ownerReferences"]
    assert ref["kind"] == constants.KIND_SECRET
    held = cluster.stored(constants.KIND_SECRET, APP_NS, "db")
    assert held is not None
    assert not merging.holding(held)


def test_an_orphan_secret_has_no_owner_reference(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret(creationPolicy="Orphan"))
    write(directory, CREDENTIALS)
    assert rt.syncer.run(KEY) == "written"
    assert "ownerReferences" not in stored.secret(cluster)["metadata"]
    assert stored.data(cluster) == CREDENTIALS
    assert rt.syncer.run(KEY, verify=True) == "unchanged"


def test_switching_owner_to_orphan_drops_the_owner_reference_and_back_adds_it(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret())
    write(directory, CREDENTIALS)
    rt.syncer.run(KEY)
    cluster.add(hsmsecret(creationPolicy="Orphan"))
    assert rt.syncer.run(KEY, verify=True) == "written"
    assert "ownerReferences" not in stored.secret(cluster)["metadata"]
    cluster.add(hsmsecret())
    assert rt.syncer.run(KEY, verify=True) == "written"
    assert len(stored.secret(cluster)["metadata"]["ownerReferences"]) == 1


def test_a_new_hsmsecret_takes_back_the_secret_an_orphan_left(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret(creationPolicy="Orphan"))
    write(directory, CREDENTIALS)
    rt.syncer.run(KEY)
    cluster.delete(constants.KIND_SECRET, APP_NS, "db")
    rt.syncer.run(KEY)
    again = hsmsecret(creationPolicy="Orphan")
    again["metadata"]["uid"] = "uid-db-2"
    cluster.add(again)
    assert rt.syncer.run(KEY, verify=True) == "unchanged"
    assert stored.status(cluster)["syncStatus"] == "InSync"


# ---------------------------------------------------------------- Merge


def test_a_merge_writes_only_our_keys_and_keeps_the_foreign_ones(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    foreign_secret(cluster)
    cluster.add(hsmsecret(creationPolicy="Merge"))
    write(directory, CREDENTIALS)
    assert rt.syncer.run(KEY) == "written"
    assert stored.data(cluster) == {"config": b"debug=false", **CREDENTIALS}
    meta = stored.secret(cluster)["metadata"]
    assert meta["labels"][constants.LABEL_MANAGED_BY] == "Helm"
    assert meta["labels"][constants.LABEL_SECRET] == "db"
    assert meta["annotations"]["meta.helm.sh/release-name"] == "app"
    assert meta["annotations"][constants.ANNOTATION_OWNED_KEYS] == "password,username"
    assert "ownerReferences" not in meta
    assert stored.status(cluster)["ownedKeys"] == ["password", "username"]
    assert stored.status(cluster)["syncStatus"] == "InSync"


def test_a_merge_holds_the_hsmsecret_with_its_finalizer(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    foreign_secret(cluster)
    cluster.add(hsmsecret(creationPolicy="Merge"))
    write(directory, CREDENTIALS)
    rt.syncer.run(KEY)
    held = cluster.stored(constants.KIND_SECRET, APP_NS, "db")
    assert held is not None
    assert merging.holding(held)


def test_a_foreign_edit_of_a_foreign_key_causes_no_write(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    foreign_secret(cluster)
    cluster.add(hsmsecret(creationPolicy="Merge"))
    write(directory, CREDENTIALS)
    rt.syncer.run(KEY)
    edit(cluster, "config", b"debug=true")
    assert rt.syncer.intact(KEY, stored.secret(cluster))
    before = list(cluster.calls)
    assert rt.syncer.run(KEY, verify=True) == "unchanged"
    assert cluster.calls == before
    assert stored.data(cluster)["config"] == b"debug=true"


def test_a_foreign_edit_of_our_key_is_undone(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    foreign_secret(cluster)
    cluster.add(hsmsecret(creationPolicy="Merge"))
    write(directory, CREDENTIALS)
    rt.syncer.run(KEY)
    edit(cluster, "password", b"guessed")
    assert not rt.syncer.intact(KEY, stored.secret(cluster))
    assert rt.syncer.run(KEY, verify=True) == "written"
    assert stored.data(cluster)["password"] == b"s3cret"


def test_a_key_leaving_the_hsm_secret_is_removed_and_only_that_one(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    foreign_secret(cluster)
    cluster.add(hsmsecret(creationPolicy="Merge"))
    write(directory, CREDENTIALS)
    rt.syncer.run(KEY)
    write(directory, {"password": b"n3w"})
    assert rt.syncer.run(KEY) == "written"
    assert stored.data(cluster) == {"config": b"debug=false", "password": b"n3w"}
    assert stored.status(cluster)["ownedKeys"] == ["password"]


def test_a_merge_never_removes_a_key_it_did_not_write(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    foreign_secret(cluster)
    cluster.add(hsmsecret(creationPolicy="Merge", data=[{"secretKey": "password", "key": "password"}]))
    write(directory, CREDENTIALS)
    rt.syncer.run(KEY)
    edit(cluster, "username", b"set-by-helm")
    write(directory, {"password": b"n3w"})
    assert rt.syncer.run(KEY) == "written"
    assert stored.data(cluster) == {"config": b"debug=false", "username": b"set-by-helm", "password": b"n3w"}


def test_a_merge_without_a_secret_waits_with_secret_not_found_and_a_warning(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret(creationPolicy="Merge"))
    write(directory, CREDENTIALS)
    assert rt.syncer.run(KEY) == "error"
    assert cluster.stored("Secret", APP_NS, "db") is None
    assert ready_reason(cluster) == "SecretNotFound"
    assert "SyncFailed" in cluster.reasons()
    foreign_secret(cluster)
    assert rt.syncer.run(KEY, verify=True) == "written"
    assert stored.data(cluster)["password"] == b"s3cret"


def test_a_merge_into_a_secret_of_another_type_is_an_invalid_spec(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    foreign_secret(cluster, type="kubernetes.io/tls")
    cluster.add(hsmsecret(creationPolicy="Merge"))
    write(directory, CREDENTIALS)
    assert rt.syncer.run(KEY) == "error"
    assert ready_reason(cluster) == "InvalidSpec"
    assert "never changes a Secret's type" in stored.status(cluster)["lastError"]
    assert stored.data(cluster) == {"config": b"debug=false"}


def test_a_merge_into_an_immutable_secret_is_an_invalid_spec(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    foreign_secret(cluster, immutable=True)
    cluster.add(hsmsecret(creationPolicy="Merge"))
    write(directory, CREDENTIALS)
    assert rt.syncer.run(KEY) == "error"
    assert ready_reason(cluster) == "InvalidSpec"


def test_a_merge_into_a_secret_another_hsmsecret_names_is_refused(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    foreign_secret(cluster)
    taken = stored.secret(cluster)
    taken["metadata"]["labels"][constants.LABEL_SECRET] = "other"
    cluster.add(taken)
    cluster.add(hsmsecret(creationPolicy="Merge"))
    write(directory, CREDENTIALS)
    assert rt.syncer.run(KEY) == "error"
    assert ready_reason(cluster) == "SecretNotManaged"
    assert stored.data(cluster) == {"config": b"debug=false"}


def test_deleting_a_merging_hsmsecret_takes_out_our_keys_and_keeps_the_secret(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    foreign_secret(cluster)
    cluster.add(hsmsecret(creationPolicy="Merge"))
    write(directory, CREDENTIALS)
    rt.syncer.run(KEY)
    delete_hsmsecret(cluster)
    assert rt.syncer.run(KEY, verify=True) == "released"
    assert stored.data(cluster) == {"config": b"debug=false"}
    meta = stored.secret(cluster)["metadata"]
    assert constants.LABEL_SECRET not in meta["labels"]
    assert not any(k.startswith(f"{constants.GROUP}/") for k in meta["annotations"])
    assert cluster.stored(constants.KIND_SECRET, APP_NS, "db") is None  # its finalizer gone, so is it
    assert "MergedKeysRemoved" in cluster.reasons()


def test_a_merge_secret_deleted_on_the_hsm_loses_only_our_keys(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    foreign_secret(cluster)
    cluster.add(hsmsecret(creationPolicy="Merge"))
    write(directory, CREDENTIALS)
    rt.syncer.run(KEY)
    directory.clients["hsm-a"].delete(PATH)
    assert rt.syncer.run(KEY) == "written"
    assert stored.data(cluster) == {"config": b"debug=false"}
    before, was = list(cluster.calls), stored.status(cluster)
    rt.syncer.run(KEY, verify=True)
    assert stored.status(cluster) == was
    assert cluster.calls == before


def test_switching_owner_to_merge_drops_the_owner_reference(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.add(hsmsecret())
    write(directory, CREDENTIALS)
    rt.syncer.run(KEY)
    cluster.add(hsmsecret(creationPolicy="Merge"))
    assert rt.syncer.run(KEY, verify=True) == "written"
    assert not stored.secret(cluster)["metadata"].get("ownerReferences")
    assert rt.syncer.run(KEY, verify=True) == "unchanged"


def test_a_merged_secret_event_of_a_foreign_change_queues_no_pass(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    foreign_secret(cluster)
    cluster.add(hsmsecret(creationPolicy="Merge"))
    write(directory, CREDENTIALS)
    rt.syncer.run(KEY)
    edit(cluster, "config", b"debug=true")
    cluster_triggers: triggers.ClusterTriggers = rt.triggers
    cluster_triggers.secret("MODIFIED", stored.secret(cluster))
    assert rt.queue.backlog() == 0


def test_a_failed_take_out_keeps_the_finalizer_warns_and_is_tried_again(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    foreign_secret(cluster)
    cluster.add(hsmsecret(creationPolicy="Merge"))
    write(directory, CREDENTIALS)
    rt.syncer.run(KEY)
    delete_hsmsecret(cluster)
    cluster.failures["patch"] = kube.KubeError("patch Secret app/db: 500 Internal Server Error", 500)
    assert rt.syncer.run(KEY, verify=True) == "error"
    held = cluster.stored(constants.KIND_SECRET, APP_NS, "db")
    assert held is not None
    assert merging.holding(held)
    assert "SyncFailed" in cluster.reasons()
    del cluster.failures["patch"]
    assert rt.syncer.run(KEY, verify=True) == "released"
    assert stored.data(cluster) == {"config": b"debug=false"}


def test_switching_merge_to_owner_drops_the_finalizer_and_leaves_the_foreign_secret(
    rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    foreign_secret(cluster)
    cluster.add(hsmsecret(creationPolicy="Merge"))
    write(directory, CREDENTIALS)
    rt.syncer.run(KEY)
    switched = cluster.stored(constants.KIND_SECRET, APP_NS, "db")
    assert switched is not None
    switched["spec"].pop("creationPolicy")
    cluster.add(switched)
    assert rt.syncer.run(KEY, verify=True) == "error"
    assert ready_reason(cluster) == "SecretNotManaged"
    held = cluster.stored(constants.KIND_SECRET, APP_NS, "db")
    assert held is not None
    assert not merging.holding(held)
    assert stored.data(cluster) == {"config": b"debug=false", **CREDENTIALS}
