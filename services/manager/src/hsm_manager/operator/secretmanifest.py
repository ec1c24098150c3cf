"""The Secret a sync pass writes (or the patch it merges into one): its data, and the metadata the spec and
the operator give it."""

from __future__ import annotations

import base64
import dataclasses

from hsm_common import checksum, constants, models
from hsm_manager import kube
from hsm_manager.decide import creation, sync

from . import watched


@dataclasses.dataclass(frozen=True)
class Written:
    """What a pass writes into the Secret: the spec's shape of one HSM copy."""

    data: dict[str, bytes]
    version: int
    hsm_checksum: str
    """Checksum of the HSM copy the data was made from (with dataFrom: sources.combined's, of all copies)."""
    sources: tuple[models.SourceVersion, ...] = ()
    """With dataFrom: the version read of each source path."""
    conflicts: tuple[models.KeyConflict, ...] = ()
    """With dataFrom: keys more than one source held, and the source that won."""


def _made_mac(wanted: sync.Wanted, written: Written, mac_key: bytes) -> str | None:
    if not wanted.shape:
        return None
    return sync.shape_mac(mac_key, wanted.shape, written.hsm_checksum, checksum.checksum(written.data))


def build(
    hsmsecret: kube.Obj,
    spec: models.HSMSecretSpec,
    wanted: sync.Wanted,
    written: Written,
    mac_key: bytes,
) -> kube.Obj:
    """The Secret manifest holding written for hsmsecret: the spec's labels, annotations, type and
    immutability, and the operator's own labels, annotations and (creationPolicy Owner) controller
    reference."""
    meta = hsmsecret["metadata"]
    labels, annotations = _our_metadata(meta["name"], wanted, written, mac_key)
    manifest: kube.Obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": wanted.secret_type,
        "metadata": {
            "name": spec.effective_secret_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": annotations,
        },
        "data": _encoded(written.data),
    }
    if wanted.creation == models.CreationPolicy.OWNER:
        manifest["metadata"]["ownerReferences"] = [
            {
                "apiVersion": constants.API_VERSION,
                "kind": constants.KIND_SECRET,
                "name": meta["name"],
                "uid": meta["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    if wanted.immutable:
        manifest["immutable"] = True
    return manifest


def _our_metadata(
    hsmsecret_name: str, wanted: sync.Wanted, written: Written, mac_key: bytes
) -> tuple[dict[str, str], dict[str, str]]:
    """The labels and annotations a Secret holding written carries (sync.secret_metadata with its MACs)."""
    return sync.secret_metadata(
        wanted,
        hsmsecret_name,
        written.version,
        checksum.mac(mac_key, written.data),
        _made_mac(wanted, written, mac_key),
    )


def merge_patch(
    hsmsecret: kube.Obj, wanted: sync.Wanted, written: Written, mac_key: bytes, current: watched.SecretSeen
) -> kube.Obj:
    """The strategic merge patch that writes written's keys into current, someone else's Secret
    (creationPolicy Merge): it sets those keys, removes the keys it wrote before and no longer writes, adds
    the spec's labels and annotations and the operator's own (never its managed-by label), and takes out an
    owner reference to hsmsecret; anything else of current is left as it is. current's resourceVersion is
    its precondition."""
    meta = hsmsecret["metadata"]
    previous = creation.owned_keys(current.annotations)
    removed = creation.dropped(previous, current.keys, set(written.data))
    labels, annotations = _our_metadata(meta["name"], wanted, written, mac_key)
    del labels[constants.LABEL_MANAGED_BY]
    metadata: kube.Obj = {
        "resourceVersion": current.resource_version,
        "labels": labels,
        "annotations": {
            constants.ANNOTATION_SHAPE_MAC: None,  # set again below when the spec shapes the data
            **annotations,
            constants.ANNOTATION_OWNED_KEYS: creation.owned_annotation(set(written.data)),
        },
    }
    if meta["uid"] in current.owner_uids:
        metadata["ownerReferences"] = [{"$patch": "delete", "uid": meta["uid"]}]
    return {
        "metadata": metadata,
        "data": {**dict.fromkeys(removed), **_encoded(written.data)},
    }


def release_patch(current: watched.SecretSeen) -> kube.Obj:
    """The strategic merge patch that takes a merge back out of current: the keys it wrote, its annotations
    and the label naming its HSMSecret; keys it did not write and the Secret itself stay."""
    owned = creation.owned_keys(current.annotations)
    return {
        "metadata": {
            "resourceVersion": current.resource_version,
            "labels": {constants.LABEL_SECRET: None},
            "annotations": dict.fromkeys(creation.OUR_ANNOTATIONS),
        },
        "data": dict.fromkeys(creation.dropped(owned, current.keys, set())),
    }


def _encoded(data: dict[str, bytes]) -> dict[str, str]:
    return {k: base64.b64encode(v).decode() for k, v in data.items()}
