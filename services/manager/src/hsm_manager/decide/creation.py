"""spec.creationPolicy: which Secret an HSMSecret may write, and what Merge writes into someone else's. Pure.

Owner and Orphan write the whole Secret (Orphan without the owner reference). Merge writes only the keys the
spec makes into an existing Secret and records them in the Secret's owned-keys annotation, in the same
write; its data MAC covers those keys alone, so another controller's keys never look like drift.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Set

from hsm_common import constants, models

OUR_ANNOTATIONS = (
    constants.ANNOTATION_HSM_VERSION,
    constants.ANNOTATION_DATA_MAC,
    constants.ANNOTATION_SHAPE_MAC,
    constants.ANNOTATION_OWNED_KEYS,
)
"""The annotations a merge writes, and its clean-up removes."""


@dataclasses.dataclass(frozen=True)
class Claim:
    """How a Secret stands to one HSMSecret."""

    managed: bool
    """The HSMSecret may write it."""
    owner_referenced: bool
    """It carries an owner reference to the HSMSecret."""


def claim(
    policy: models.CreationPolicy,
    hsmsecret: str,
    uid: str,
    *,
    ours: bool,
    owner_uids: Set[str],
    labels: Mapping[str, str],
) -> Claim:
    """Whether the HSMSecret (hsmsecret, uid) may write a Secret carrying labels and owner_uids.

    ours: it carries the operator's managed-by label (or the Go operator's). Owner and Orphan write a Secret
    that is ours and either references this HSMSecret or references nothing while naming it: a Secret an
    Orphan HSMSecret left behind is taken back by the next HSMSecret of that name. Merge writes any Secret
    that no other HSMSecret names.
    """
    referenced = uid in owner_uids
    named = labels.get(constants.LABEL_SECRET)
    if policy == models.CreationPolicy.MERGE:
        return Claim(named in (None, hsmsecret), referenced)
    adoptable = not owner_uids and named == hsmsecret
    return Claim(ours and (referenced or adoptable), referenced)


def owned_keys(annotations: Mapping[str, str]) -> frozenset[str]:
    """The keys the owned-keys annotation names (none when it is absent)."""
    raw = annotations.get(constants.ANNOTATION_OWNED_KEYS, "")
    return frozenset(key for key in raw.split(",") if key)


def owned_annotation(keys: Set[str]) -> str:
    """The owned-keys annotation for keys (Secret keys never hold a comma)."""
    return ",".join(sorted(keys))


def ours(data: Mapping[str, bytes], annotations: Mapping[str, str]) -> dict[str, bytes]:
    """The part of a Secret's data its MAC covers: the owned keys of a merged Secret, else all of it."""
    if constants.ANNOTATION_OWNED_KEYS not in annotations:
        return dict(data)
    owned = owned_keys(annotations)
    return {key: value for key, value in data.items() if key in owned}


def dropped(previous: Set[str], present: Set[str], written: Set[str]) -> list[str]:
    """Keys a merge removes: those it wrote before, still in the Secret, that it no longer writes.

    A key the operator never recorded as written is never removed, whoever wrote it.
    """
    return sorted((previous & present) - written)


def type_refusal(secret_name: str, secret_type: str, wanted_type: str) -> str | None:
    """Why Merge cannot write into a Secret of secret_type (None: it can): a Secret's type is its owner's."""
    if secret_type == wanted_type:
        return None
    return (
        f"Secret {secret_name} has type {secret_type}, not {wanted_type}: creationPolicy Merge never changes "
        "a Secret's type (give its type as target.type)"
    )
