import datetime

from hsm_common import models
from hsm_manager.decide import secretstatus, sync

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
LATER = NOW + datetime.timedelta(minutes=5)
REF = models.SecretRef(name="s", namespace="ns")
IN_SYNC = sync.Decision(sync.Action.NOTHING, models.SyncStatus.IN_SYNC, sync.Reason.SYNCED, "ok", version=3)
UNAVAILABLE = sync.Decision(
    sync.Action.NOTHING, models.SyncStatus.ERROR, sync.Reason.DEVICE_UNAVAILABLE, "no device answered"
)


def build(
    previous: models.HSMSecretStatus, decision: sync.Decision, now: datetime.datetime, synced: bool = False
) -> models.HSMSecretStatus:
    return secretstatus.build(
        previous,
        decision,
        hsm_mac="hmac-sha256:1",
        secret_mac="hmac-sha256:1",
        secret_ref=REF,
        generation=1,
        synced=synced,
        now=now,
    )


def test_idle_pass_returns_an_equal_status() -> None:
    first = build(models.HSMSecretStatus(), IN_SYNC, NOW, synced=True)
    assert build(first, IN_SYNC, LATER) == first


def test_write_moves_last_sync_time() -> None:
    first = build(models.HSMSecretStatus(), IN_SYNC, NOW, synced=True)
    assert build(first, IN_SYNC, LATER, synced=True).last_sync_time == LATER


def test_unavailable_device_sets_error_reason_and_keeps_version() -> None:
    first = build(models.HSMSecretStatus(), IN_SYNC, NOW, synced=True)
    status = build(first, UNAVAILABLE, LATER)
    ready = status.conditions[0]
    assert (status.sync_status, ready.status, ready.reason) == ("Error", "False", "DeviceUnavailable")
    assert status.hsm_version == 3
    assert ready.last_transition_time == LATER


def test_divergent_devices_are_named_in_the_message() -> None:
    decision = sync.Decision(
        sync.Action.NOTHING, models.SyncStatus.IN_SYNC, sync.Reason.SYNCED, "ok", version=3, divergent=("a2",)
    )
    assert "a2" in build(models.HSMSecretStatus(), decision, NOW).conditions[0].message


def test_invalid_spec_status_carries_the_message() -> None:
    status = secretstatus.invalid(models.HSMSecretStatus(), "path 'x' lies outside namespace", 2, NOW)
    assert (status.sync_status, status.conditions[0].reason) == ("Error", "InvalidSpec")
    assert status.last_error == "path 'x' lies outside namespace"
