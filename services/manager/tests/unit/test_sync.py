import dataclasses

from hsm_common import constants, models
from hsm_manager.decide import model, sync

DELETE = models.DeletionPolicy.DELETE
RETAIN = models.DeletionPolicy.RETAIN
OURS = sync.SecretState(
    exists=True, managed=True, secret_type="Opaque", data_checksum="sha256:a", hsm_version="3"
)
ABSENT = sync.SecretState(exists=False)
MAC_KEY = b"k" * 32


def obs(
    agent: str = "a1",
    version: int = 3,
    checksum: str = "sha256:a",
    deleted: bool = False,
    updated_at: str = "2026-01-01T00:00:00.000000Z",
) -> sync.Observation:
    return sync.Observation(agent, model.PathState(version, checksum, deleted, updated_at, "w"))


def decide(
    observations: list[sync.Observation], secret: sync.SecretState, policy: models.DeletionPolicy = DELETE
) -> sync.Decision:
    return sync.decide(observations, secret, sync.Wanted("Opaque"), policy, "s", MAC_KEY)


def test_matching_secret_needs_nothing() -> None:
    decision = decide([obs()], OURS)
    assert (decision.action, decision.sync_status) == (sync.Action.NOTHING, models.SyncStatus.IN_SYNC)


def test_absent_secret_is_written_from_the_device() -> None:
    decision = decide([obs()], ABSENT)
    assert (decision.action, decision.source) == (sync.Action.WRITE, "a1")


def test_edited_secret_data_is_rewritten() -> None:
    edited = sync.SecretState(True, True, "Opaque", "sha256:edited", "3")
    assert decide([obs()], edited).action == sync.Action.WRITE


def test_newer_hsm_version_is_written() -> None:
    assert decide([obs(version=4)], OURS).action == sync.Action.WRITE


def test_changed_secret_type_is_rewritten() -> None:
    assert (
        sync.decide([obs()], OURS, sync.Wanted("kubernetes.io/tls"), DELETE, "s", MAC_KEY).action
        == sync.Action.WRITE
    )


def test_newest_device_wins_and_divergence_is_reported() -> None:
    decision = decide([obs("a1", 3), obs("a2", 5, "sha256:b")], OURS)
    assert (decision.source, decision.version, decision.divergent) == ("a2", 5, ("a1",))


def test_equal_versions_are_settled_by_the_later_write_whatever_the_device_order() -> None:
    earlier = obs("a1", 5, "sha256:a", updated_at="2026-01-01T00:00:01.000000Z")
    later = obs("a2", 5, "sha256:b", updated_at="2026-01-01T00:00:02.000000Z")
    for order in ([earlier, later], [later, earlier]):
        decision = decide(order, OURS)
        assert (decision.source, decision.checksum, decision.divergent) == ("a2", "sha256:b", ("a1",))


def test_equal_copies_are_read_from_the_first_device_by_name() -> None:
    assert decide([obs("a2", 4), obs("a1", 4)], OURS).source == "a1"


def test_unavailable_devices_keep_the_secret() -> None:
    decision = decide([sync.Observation("a1", error="unavailable")], OURS)
    assert (decision.action, decision.reason) == (sync.Action.NOTHING, sync.Reason.DEVICE_UNAVAILABLE)


def test_no_agents_at_all_is_device_unavailable() -> None:
    assert decide([], OURS).reason == sync.Reason.DEVICE_UNAVAILABLE


def test_one_failing_device_does_not_block_the_other() -> None:
    decision = decide([sync.Observation("a1", error="down"), obs("a2", 4)], OURS)
    assert (decision.action, decision.source) == (sync.Action.WRITE, "a2")


def test_tombstone_with_delete_policy_deletes_our_secret() -> None:
    decision = decide([obs(version=4, checksum="", deleted=True)], OURS)
    assert (decision.action, decision.sync_status) == (sync.Action.DELETE, models.SyncStatus.DELETED)


def test_tombstone_with_retain_policy_keeps_the_secret() -> None:
    decision = decide([obs(version=4, checksum="", deleted=True)], OURS, RETAIN)
    assert (decision.action, decision.sync_status) == (sync.Action.NOTHING, models.SyncStatus.DELETED)


def test_tombstone_never_deletes_a_foreign_secret() -> None:
    foreign = sync.SecretState(exists=True, managed=False)
    assert decide([obs(version=4, deleted=True)], foreign).action == sync.Action.NOTHING


def test_foreign_secret_is_never_overwritten() -> None:
    decision = decide([obs()], sync.SecretState(exists=True, managed=False))
    assert (decision.action, decision.reason) == (sync.Action.NOTHING, sync.Reason.CONFLICT)


def test_missing_path_keeps_the_secret() -> None:
    decision = decide([sync.Observation("a1")], OURS)
    assert (decision.action, decision.reason) == (sync.Action.NOTHING, sync.Reason.NOT_FOUND)


def test_a_type_change_recreates_the_secret() -> None:
    reason = sync.recreate_reason(OURS, sync.Wanted("kubernetes.io/tls"), "sha256:a")
    assert reason == "its type changes from Opaque to kubernetes.io/tls"
    assert sync.recreate_reason(ABSENT, sync.Wanted("kubernetes.io/tls"), "sha256:a") is None


def test_a_mutable_secret_is_replaced_in_place() -> None:
    assert sync.recreate_reason(OURS, sync.Wanted("Opaque", immutable=True), "sha256:b") is None


def test_new_data_for_an_immutable_secret_recreates_it() -> None:
    frozen = dataclasses.replace(OURS, immutable=True)
    wanted = sync.Wanted("Opaque", immutable=True)
    assert sync.recreate_reason(frozen, wanted, "sha256:b") == "it is immutable and its data changes"
    assert sync.recreate_reason(frozen, wanted, "sha256:a") is None  # new labels only: a replace will do


def test_an_immutable_secret_made_mutable_is_recreated() -> None:
    frozen = dataclasses.replace(OURS, immutable=True)
    assert sync.recreate_reason(frozen, sync.Wanted("Opaque"), "sha256:a") is not None


SHAPED = sync.Wanted("Opaque", labels={"team": "db"}, shape="digest-1")


def shaped_secret(**changes: object) -> sync.SecretState:
    """Our Secret as a pass left it for SHAPED from the copy obs() describes, with changes."""
    made = sync.shape_mac(MAC_KEY, SHAPED.shape, "sha256:a", "sha256:rendered")
    state = sync.SecretState(
        True,
        True,
        "Opaque",
        "sha256:rendered",
        "3",
        labels={"team": "db"},
        annotations={constants.ANNOTATION_SHAPE_MAC: made},
    )
    return dataclasses.replace(state, **changes)  # type: ignore[arg-type]


def decide_shaped(secret: sync.SecretState, wanted: sync.Wanted = SHAPED, version: int = 3) -> sync.Action:
    return sync.decide([obs(version=version)], secret, wanted, DELETE, "s", MAC_KEY).action


def test_a_shaped_secret_made_from_the_newest_copy_needs_nothing() -> None:
    assert decide_shaped(shaped_secret()) == sync.Action.NOTHING


def test_a_shaped_secret_is_rewritten_when_the_hsm_copy_changes() -> None:
    assert decide_shaped(shaped_secret(), version=4) == sync.Action.WRITE


def test_a_shaped_secret_is_rewritten_when_its_data_was_edited() -> None:
    assert decide_shaped(shaped_secret(data_checksum="sha256:edited")) == sync.Action.WRITE


def test_a_shaped_secret_is_rewritten_when_the_spec_shapes_it_differently() -> None:
    assert decide_shaped(shaped_secret(), dataclasses.replace(SHAPED, shape="digest-2")) == sync.Action.WRITE


def test_a_label_removed_from_the_secret_by_hand_is_put_back() -> None:
    assert decide_shaped(shaped_secret(labels={})) == sync.Action.WRITE


def test_labels_someone_else_added_to_the_secret_are_no_reason_to_write() -> None:
    assert decide_shaped(shaped_secret(labels={"team": "db", "other": "x"})) == sync.Action.NOTHING


def test_a_secret_whose_immutability_differs_is_rewritten() -> None:
    assert decide_shaped(shaped_secret(immutable=True)) == sync.Action.WRITE


def test_a_secret_shaped_before_is_rewritten_when_the_spec_becomes_plain() -> None:
    plain_data = shaped_secret(data_checksum="sha256:a")
    assert decide(([obs()]), plain_data).action == sync.Action.WRITE


def test_the_shape_mac_depends_on_the_key() -> None:
    assert sync.shape_mac(MAC_KEY, "d", "sha256:a", "sha256:b") != sync.shape_mac(
        b"o" * 32, "d", "sha256:a", "sha256:b"
    )


def test_the_operators_labels_and_annotations_win_over_the_specs() -> None:
    wanted = sync.Wanted("Opaque", labels={"team": "db"}, annotations={"note": "x"}, shape="d")
    labels, annotations = sync.secret_metadata(wanted, "db", 3, "hmac-sha256:x", "hmac-sha256:y")
    assert labels == {
        "team": "db",
        constants.LABEL_MANAGED_BY: constants.MANAGED_BY_VALUE,
        constants.LABEL_SECRET: "db",
    }
    assert annotations == {
        "note": "x",
        constants.ANNOTATION_HSM_VERSION: "3",
        constants.ANNOTATION_DATA_MAC: "hmac-sha256:x",
        constants.ANNOTATION_SHAPE_MAC: "hmac-sha256:y",
    }
