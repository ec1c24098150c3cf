import datetime

from hsm_common import models
from hsm_manager.decide import rollout

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
WEB = models.RolloutRestartTarget(kind=models.RolloutKind.DEPLOYMENT, name="web")
DB = models.RolloutRestartTarget(kind=models.RolloutKind.STATEFUL_SET, name="db")
SPEC = models.HSMSecretSpec(rollout_restart_targets=[WEB, DB], min_restart_interval=60)
NEVER = models.HSMSecretStatus()


def restarted_at(seconds_ago: float, pending: bool | None = None) -> models.HSMSecretStatus:
    return models.HSMSecretStatus(
        last_rollout_restart=NOW - datetime.timedelta(seconds=seconds_ago), rollout_restart_pending=pending
    )


def test_a_data_change_restarts_the_targets() -> None:
    assert rollout.plan(SPEC, NEVER, data_changed=True, now=NOW) == rollout.Plan(restart=True)


def test_a_pass_that_changed_no_data_restarts_nothing() -> None:
    # A first creation, or a write of new labels, annotations or type only, is no data change.
    assert rollout.plan(SPEC, NEVER, data_changed=False, now=NOW) == rollout.Plan()


def test_without_targets_a_data_change_restarts_nothing() -> None:
    assert rollout.plan(models.HSMSecretSpec(), NEVER, data_changed=True, now=NOW) == rollout.Plan()


def test_a_change_inside_the_interval_waits_for_its_end() -> None:
    step = rollout.plan(SPEC, restarted_at(20), data_changed=True, now=NOW)
    assert step == rollout.Plan(pending=True, wait=40.0)


def test_a_change_after_the_interval_restarts_at_once() -> None:
    assert rollout.plan(SPEC, restarted_at(60), data_changed=True, now=NOW).restart


def test_a_waiting_restart_is_done_once_the_interval_ended_without_another_change() -> None:
    assert rollout.plan(SPEC, restarted_at(61, pending=True), data_changed=False, now=NOW).restart


def test_a_waiting_restart_keeps_waiting_inside_the_interval() -> None:
    step = rollout.plan(SPEC, restarted_at(50, pending=True), data_changed=False, now=NOW)
    assert step == rollout.Plan(pending=True, wait=10.0)


def test_an_interval_of_zero_never_holds_a_restart_back() -> None:
    spec = SPEC.model_copy(update={"min_restart_interval": 0})
    assert rollout.plan(spec, restarted_at(0), data_changed=True, now=NOW).restart


def test_a_restart_records_its_time_and_a_true_condition_naming_the_targets() -> None:
    outcomes = [rollout.Outcome(WEB), rollout.Outcome(DB)]
    status = rollout.status(restarted_at(90, pending=True), rollout.Plan(restart=True), outcomes, 3, NOW)
    assert status.last_rollout_restart == NOW
    assert status.rollout_restart_pending is None
    (condition,) = status.conditions
    assert (condition.type, condition.status, condition.reason) == ("RolloutRestarted", "True", "Restarted")
    assert condition.message == "restarted deployment/web, statefulset/db"


def test_a_missing_or_forbidden_target_makes_the_condition_false_and_says_why() -> None:
    outcomes = [
        rollout.Outcome(WEB, rollout.Failure.NOT_FOUND),
        rollout.Outcome(DB, rollout.Failure.FORBIDDEN, "patch StatefulSet ns/db: 403 Forbidden"),
    ]
    (condition,) = rollout.status(NEVER, rollout.Plan(restart=True), outcomes, 1, NOW).conditions
    assert (condition.status, condition.reason) == ("False", "TargetNotFound")
    assert condition.message == (
        "deployment/web was not restarted: it does not exist in this namespace; "
        "statefulset/db was not restarted: the operator may not patch it "
        "(enable the rollout-restart RBAC component)"
    )


def test_a_waiting_restart_is_marked_pending_and_keeps_the_last_restart_time() -> None:
    before = restarted_at(20)
    status = rollout.status(before, rollout.Plan(pending=True, wait=40.0), [], 1, NOW)
    assert status == before.model_copy(update={"rollout_restart_pending": True})


def test_a_pass_without_a_restart_leaves_an_idle_status_equal() -> None:
    before = restarted_at(500)
    assert rollout.status(before, rollout.Plan(), [], 1, NOW) == before
