import dataclasses

import pydantic
import pytest

from hsm_common import constants, models
from hsm_manager.decide import creation, model, sync

OWNER = models.CreationPolicy.OWNER
ORPHAN = models.CreationPolicy.ORPHAN
MERGE = models.CreationPolicy.MERGE
MAC_KEY = b"k" * 32
NAMED = {constants.LABEL_SECRET: "db"}
OWNED = {constants.ANNOTATION_OWNED_KEYS: "password,username"}


def claim(
    policy: models.CreationPolicy, ours: bool, uids: set[str], labels: dict[str, str]
) -> creation.Claim:
    return creation.claim(policy, "db", "uid-1", ours=ours, owner_uids=frozenset(uids), labels=labels)


def test_an_owner_writes_its_own_referenced_secret() -> None:
    assert claim(OWNER, True, {"uid-1"}, NAMED) == creation.Claim(managed=True, owner_referenced=True)


def test_an_owner_takes_back_the_secret_an_orphan_of_its_name_left() -> None:
    assert claim(OWNER, True, set(), NAMED).managed


def test_a_secret_referencing_another_hsmsecret_is_not_taken_over() -> None:
    assert not claim(ORPHAN, True, {"uid-old"}, NAMED).managed


def test_a_secret_without_our_label_is_not_an_owners() -> None:
    assert not claim(OWNER, False, set(), NAMED).managed


def test_a_merge_writes_any_secret_no_other_hsmsecret_names() -> None:
    assert claim(MERGE, False, set(), {}).managed
    assert claim(MERGE, False, set(), NAMED).managed
    assert not claim(MERGE, False, set(), {constants.LABEL_SECRET: "other"}).managed


def test_the_mac_of_a_merged_secret_covers_only_the_owned_keys() -> None:
    data = {"password": b"p", "username": b"u", "config": b"c"}
    assert creation.ours(data, OWNED) == {"password": b"p", "username": b"u"}
    assert creation.ours(data, {}) == data


def test_only_keys_written_before_and_no_longer_written_are_dropped() -> None:
    previous, present = {"password", "username"}, {"password", "username", "config"}
    assert creation.dropped(previous, present, {"password"}) == ["username"]
    assert creation.dropped(previous, {"password", "config"}, {"password"}) == []
    assert creation.dropped(set(), present, set()) == []


def test_the_owned_keys_annotation_round_trips() -> None:
    assert creation.owned_keys({constants.ANNOTATION_OWNED_KEYS: creation.owned_annotation({"b", "a"})}) == {
        "a",
        "b",
    }
    assert creation.owned_keys({}) == frozenset()


def test_merge_refuses_an_immutable_target() -> None:
    with pytest.raises(pydantic.ValidationError, match="creationPolicy Merge"):
        models.HSMSecretSpec.model_validate({"creationPolicy": "Merge", "target": {"immutable": True}})


def test_the_default_creation_policy_is_owner() -> None:
    assert models.HSMSecretSpec().creation_policy == OWNER


# ---------------------------------------------------------------- the sync decision under Merge

MERGING = sync.Wanted("Opaque", creation=MERGE)
FOREIGN = sync.SecretState(
    exists=True, managed=True, secret_type="Opaque", data_checksum="sha256:a", hsm_version="3"
)


def obs(deleted: bool = False) -> sync.Observation:
    return sync.Observation("a1", model.PathState(3, "sha256:a", deleted, "2026-01-01T00:00:00.000000Z", "w"))


def decide(secret: sync.SecretState, deleted: bool = False) -> sync.Decision:
    return sync.decide([obs(deleted)], secret, MERGING, models.DeletionPolicy.DELETE, "db", MAC_KEY)


def test_a_merge_without_a_secret_is_secret_not_found_and_writes_nothing() -> None:
    decision = decide(sync.SecretState(exists=False))
    assert (decision.action, decision.reason) == (sync.Action.NOTHING, sync.Reason.SECRET_NOT_FOUND)


def test_a_merge_into_a_secret_of_another_type_is_an_invalid_spec() -> None:
    decision = decide(dataclasses.replace(FOREIGN, secret_type="kubernetes.io/tls"))
    assert (decision.action, decision.reason) == (sync.Action.NOTHING, sync.Reason.INVALID)


def test_a_secret_recording_our_keys_in_sync_needs_nothing() -> None:
    recorded = dataclasses.replace(FOREIGN, annotations=OWNED, owner_referenced=False)
    assert decide(recorded).action == sync.Action.NOTHING


def test_a_secret_that_does_not_record_our_keys_is_written() -> None:
    assert decide(dataclasses.replace(FOREIGN, owner_referenced=False)).action == sync.Action.WRITE


def test_a_deletion_on_the_hsm_takes_out_only_recorded_keys() -> None:
    recorded = dataclasses.replace(FOREIGN, annotations=OWNED, owner_referenced=False)
    assert decide(recorded, deleted=True).action == sync.Action.DELETE
    assert decide(dataclasses.replace(recorded, annotations={}), deleted=True).action == sync.Action.NOTHING
