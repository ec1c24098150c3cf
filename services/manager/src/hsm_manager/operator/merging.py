"""creationPolicy Merge's writes besides the data: the finalizer that holds an HSMSecret until its keys are
taken back out of the Secret, and that taking out.

Owner and Orphan need no finalizer: the garbage collector deletes an owned Secret, and an orphan stays.
"""

from __future__ import annotations

from collections.abc import Callable

from hsm_common import constants, models
from hsm_manager import kube
from hsm_manager.decide import creation

from . import secretmanifest, watched

FINALIZER = constants.FINALIZER_MERGED_KEYS


def hold(client: kube.Kube, obj: kube.Obj, policy: models.CreationPolicy) -> bool:
    """Give the HSMSecret the finalizer under Merge (before its first write), take it away under any other
    policy (its keys then stay where they are: docs/hsmsecret.md); False, with a Warning event, when that
    failed (a merge must then not write: its keys would stay when the HSMSecret goes)."""
    if (policy == models.CreationPolicy.MERGE) == holding(obj):
        return True
    try:
        if policy == models.CreationPolicy.MERGE:
            _finalizers(client, obj, lambda now: now if FINALIZER in now else [*now, FINALIZER])
        else:
            _finalizers(client, obj, lambda now: [f for f in now if f != FINALIZER])
    except kube.KubeError as exc:
        client.event(obj, "SyncFailed", f"setting the finalizer {FINALIZER} failed: {exc}", warning=True)
        return False
    return True


def holding(obj: kube.Obj) -> bool:
    """The HSMSecret carries the finalizer."""
    return FINALIZER in (obj["metadata"].get("finalizers") or [])


def release(client: kube.Kube, obj: kube.Obj, ref: models.SecretRef | None) -> None:
    """Take the keys the HSMSecret merged out of its Secret (ref, as its status names it; None: it never
    wrote one), say so in an event, then remove its finalizer.

    The Secret's other keys, and the Secret, stay. A Secret that no longer names the HSMSecret is not
    touched (another owner took it over). Raises kube.KubeError; the finalizer then stays for the next try.
    """
    if ref is not None:
        take_out(client, obj, ref.name)
    _finalizers(client, obj, lambda now: [f for f in now if f != FINALIZER])


def take_out(client: kube.Kube, obj: kube.Obj, secret_name: str) -> None:
    """Take the keys the HSMSecret obj merged out of the Secret as the API server holds it now, with the
    operator's annotations and label, and say which in a MergedKeysRemoved event. Raises kube.KubeError."""
    meta = obj["metadata"]
    removed = _take_out(client, meta["namespace"], secret_name, meta["name"])
    if removed:
        taken = ", ".join(sorted(removed))
        message = f"keys {taken} taken out of Secret {secret_name}; its other keys and the Secret stay"
        client.event(obj, "MergedKeysRemoved", message)


def _take_out(client: kube.Kube, namespace: str, secret_name: str, hsmsecret: str) -> frozenset[str]:
    """take_out's patch of the Secret; the keys it took out."""
    for attempt in range(2):
        try:
            found = watched.SecretSeen.of(client.get("Secret", namespace, secret_name))
        except kube.NotFound:
            break
        if found.labels.get(constants.LABEL_SECRET) != hsmsecret:
            break
        patch = secretmanifest.release_patch(found)
        try:
            client.patch("Secret", namespace, secret_name, patch)
        except kube.Conflict:
            if attempt:
                raise
            continue  # changed since it was read: read it again
        return frozenset(patch["data"])
    return frozenset()


def _finalizers(client: kube.Kube, obj: kube.Obj, change: Callable[[list[str]], list[str]]) -> None:
    """Patch the HSMSecret's finalizers to change(them), unless that changes nothing; once more on its
    newest copy when obj was stale (the finalizers are a list: only a precondition keeps others' ones)."""
    for attempt in range(2):
        meta = obj["metadata"]
        now = list(meta.get("finalizers") or [])
        wanted = change(now)
        if wanted == now:
            return
        patch = {"metadata": {"finalizers": wanted or None, "resourceVersion": meta.get("resourceVersion")}}
        try:
            client.patch(constants.KIND_SECRET, meta["namespace"], meta["name"], patch)
            return
        except kube.NotFound:
            return
        except kube.Conflict:
            if attempt:
                raise
            obj = client.get(constants.KIND_SECRET, meta["namespace"], meta["name"])


def owned(current: watched.SecretSeen | None) -> list[str] | None:
    """The keys a merged Secret records as ours (status.ownedKeys); None when there is no record."""
    if current is None or constants.ANNOTATION_OWNED_KEYS not in current.annotations:
        return None
    return sorted(creation.owned_keys(current.annotations))
