"""creationPolicy end to end: what becomes of the Secret when its HSMSecret is deleted.

The operator runs as its ServiceAccount, the agent is the image on node-1 serving a SoftHSM2 token (the set-up
of test_secret_sources). An Orphan HSMSecret's Secret outlives it, while the Secret of an Owner HSMSecret
deleted with it is collected; a Merge HSMSecret writes only its keys into a Secret someone else made, follows
the HSM without touching the other keys (another controller editing them causes no write), and on deletion
takes its keys out, leaving the other keys and the Secret.
"""

import base64
import pathlib
import sys
from collections.abc import Iterator

import pytest

from devcluster import testkit

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import hsmsecret_stack as stacks

LABEL_SECRET = "hsm.j5t.io/hsmsecret"
OUR_PREFIX = "hsm.j5t.io/"


def encoded(data: dict[str, bytes]) -> dict[str, str]:
    return {k: base64.b64encode(v).decode() for k, v in data.items()}


@pytest.fixture(scope="module")
def stack(kube: testkit.Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[stacks.Stack]:
    if kube.devcluster is None:
        pytest.skip("needs the local devcluster (the operator runs in one of its nodes' network namespace)")
    tmp = tmp_path_factory.mktemp("creation-policy")
    # The sync interval is longer than the tests: only watch events and spec changes bring passes.
    with stacks.running_stack(kube, tmp, "creation", ("--default-sync-interval=300s",)) as running:
        yield running


def test_an_orphan_secret_outlives_its_hsmsecret(stack: stacks.Stack, namespace: str) -> None:
    credentials = {"username": b"app", "password": b"orphan-1"}
    stack.write(f"{namespace}/kept", credentials)
    stack.write(f"{namespace}/owned", credentials)
    stack.hsmsecret(namespace, "kept", creationPolicy="Orphan")
    stack.hsmsecret(namespace, "owned")
    orphan = stack.secret_holding(namespace, "kept", credentials)
    assert not orphan["metadata"].get("ownerReferences")
    stack.secret_holding(namespace, "owned", credentials)

    stack.delete(namespace, "kept")
    stack.delete(namespace, "owned")
    # The garbage collector has acted once the owned Secret is gone: the orphan had its chance to go too.
    testkit.poll(lambda: stack.secret(namespace, "owned") is None, 60, "the owned Secret to be collected")
    left = stack.secret(namespace, "kept")
    assert left is not None
    assert left["data"] == encoded(credentials)
    assert not left["metadata"].get("ownerReferences")
    assert left["metadata"]["uid"] == orphan["metadata"]["uid"]


def test_a_merge_writes_only_its_keys_and_takes_them_out_on_deletion(
    stack: stacks.Stack, namespace: str
) -> None:
    foreign = {"config": b"debug=false"}
    stack.kube.client.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/secrets",
        {
            "metadata": {"name": "app", "labels": {"app.kubernetes.io/managed-by": "Helm"}},
            "type": "Opaque",
            "data": encoded(foreign),
        },
    )
    stack.write(f"{namespace}/app", {"password": b"merge-1"})
    stack.hsmsecret(namespace, "app", creationPolicy="Merge")
    merged = stack.secret_holding(namespace, "app", {**foreign, "password": b"merge-1"})
    assert merged["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert not merged["metadata"].get("ownerReferences")
    stack.status_when(
        namespace, "app", lambda s: s.get("ownedKeys") == ["password"], "owning the key password"
    )

    # A change on the HSM reaches only our key.
    stack.write(f"{namespace}/app", {"password": b"merge-2"})
    stack.secret_holding(namespace, "app", {**foreign, "password": b"merge-2"})

    # Another controller's edit of its own key: the operator does not write the Secret, even in a pass it
    # is made to run (a new spec generation) after seeing the edit.
    foreign = {"config": b"debug=true"}
    edited = stack.kube.client.request(
        "PATCH",
        f"/api/v1/namespaces/{namespace}/secrets/app",
        {"data": encoded(foreign)},
        "application/merge-patch+json",
    )
    version = edited["metadata"]["resourceVersion"]
    generation = stack.patch(namespace, "app", {"syncInterval": 600})
    stack.status_when(
        namespace,
        "app",
        lambda s: s.get("observedGeneration") == generation and s.get("syncStatus") == "InSync",
        f"InSync at generation {generation}",
    )
    now = stack.secret(namespace, "app")
    assert now is not None
    assert now["metadata"]["resourceVersion"] == version
    assert now["data"] == encoded({**foreign, "password": b"merge-2"})

    stack.delete(namespace, "app")
    left = stack.secret(namespace, "app")
    assert left is not None
    assert left["data"] == encoded(foreign)
    assert LABEL_SECRET not in left["metadata"].get("labels", {})
    assert not [k for k in left["metadata"].get("annotations") or {} if k.startswith(OUR_PREFIX)]
    assert left["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
