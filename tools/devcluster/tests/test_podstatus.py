"""The status the pod runner reports, and its restart decisions."""

from devcluster.podrunner import status


def _state(**kw: object) -> status.ContainerState:
    base: dict[str, object] = {
        "name": "main",
        "image": "hsm-agent",
        "pid": 42,
        "ready": True,
        "restart_count": 0,
        "started_at": "t0",
    }
    base.update(kw)
    return status.ContainerState(**base)  # type: ignore[arg-type]


def _conditions(st: dict[str, object]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in st["conditions"]}  # type: ignore[attr-defined]


def test_running_ready_container_makes_the_pod_ready() -> None:
    st = status.pod_status(_state(), "t0", "t1")
    assert st["phase"] == "Running"
    assert _conditions(st)["Ready"] == "True"
    assert st["containerStatuses"][0]["state"] == {"running": {"startedAt": "t0"}}


def test_crash_looping_container_is_waiting_and_not_ready() -> None:
    st = status.pod_status(
        _state(pid=None, ready=False, restart_count=2, waiting_reason="CrashLoopBackOff", last_exit_code=3),
        "t0",
        "t1",
    )
    assert _conditions(st)["Ready"] == "False"
    container = st["containerStatuses"][0]
    assert container["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert container["lastState"]["terminated"]["exitCode"] == 3
    assert container["restartCount"] == 2


def test_finished_container_reports_terminated_phase() -> None:
    st = status.pod_status(_state(pid=None, ready=False, phase="Failed", last_exit_code=1), "t0", "t1")
    assert st["phase"] == "Failed"
    assert st["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 1


def test_restart_policy_decides_restarts() -> None:
    assert status.should_restart("Always", 0)
    assert status.should_restart("OnFailure", 1)
    assert not status.should_restart("OnFailure", 0)
    assert not status.should_restart("Never", 1)


def test_backoff_doubles_and_is_capped() -> None:
    assert [status.backoff(n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert status.backoff(20) == 30.0
