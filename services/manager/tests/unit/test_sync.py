from hsm_common import models
from hsm_manager.decide import model, sync

DELETE = models.DeletionPolicy.DELETE
RETAIN = models.DeletionPolicy.RETAIN
OURS = sync.SecretState(
    exists=True, managed=True, secret_type="Opaque", data_checksum="sha256:a", hsm_version="3"
)
ABSENT = sync.SecretState(exists=False)


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
    return sync.decide(observations, secret, "Opaque", policy, "s")


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
    assert sync.decide([obs()], OURS, "kubernetes.io/tls", DELETE, "s").action == sync.Action.WRITE


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


def test_type_change_needs_a_new_secret() -> None:
    assert sync.needs_type_change(OURS, "kubernetes.io/tls")
    assert not sync.needs_type_change(ABSENT, "kubernetes.io/tls")
