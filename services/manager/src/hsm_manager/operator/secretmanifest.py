"""The Secret a sync pass writes: its data, and the metadata the spec and the operator give it."""

from __future__ import annotations

import base64
import dataclasses

from hsm_common import checksum, constants, models
from hsm_manager import kube
from hsm_manager.decide import sync


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


def build(
    hsmsecret: kube.Obj,
    spec: models.HSMSecretSpec,
    wanted: sync.Wanted,
    written: Written,
    mac_key: bytes,
) -> kube.Obj:
    """The Secret manifest holding written for hsmsecret: the spec's labels, annotations, type and
    immutability, and the operator's own labels, annotations and controller reference."""
    meta = hsmsecret["metadata"]
    made_mac = (
        sync.shape_mac(mac_key, wanted.shape, written.hsm_checksum, checksum.checksum(written.data))
        if wanted.shape
        else None
    )
    labels, annotations = sync.secret_metadata(
        wanted, meta["name"], written.version, checksum.mac(mac_key, written.data), made_mac
    )
    manifest: kube.Obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": wanted.secret_type,
        "metadata": {
            "name": spec.effective_secret_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": constants.API_VERSION,
                    "kind": constants.KIND_SECRET,
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "data": {k: base64.b64encode(v).decode() for k, v in written.data.items()},
    }
    if wanted.immutable:
        manifest["immutable"] = True
    return manifest
