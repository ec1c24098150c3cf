"""The pod status the runner reports for a container it runs (pure)."""

import dataclasses
import datetime
from typing import Any


def now() -> str:
    """An RFC 3339 timestamp as the API server expects it."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass(frozen=True)
class ContainerState:
    """What the runner knows about the pod's container."""

    name: str
    image: str
    pid: int | None
    """Process ID while running."""
    ready: bool
    restart_count: int
    started_at: str | None
    waiting_reason: str | None = None
    """Why the container does not run (ContainerCreating, CrashLoopBackOff, CreateContainerConfigError)."""
    message: str | None = None
    last_exit_code: int | None = None
    finished_at: str | None = None
    phase: str = "Running"
    """Pod phase: Running, or Succeeded/Failed once the restart policy gives up."""


def _condition(kind: str, ok: bool, since: str) -> dict[str, Any]:
    return {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": since}


def pod_status(state: ContainerState, start_time: str, since: str) -> dict[str, Any]:
    """The ``status`` fields to merge into the pod (podIP/hostIP stay as kwok assigned them)."""
    container: dict[str, Any] = {
        "name": state.name,
        "image": state.image,
        "imageID": "",
        "ready": state.ready,
        "restartCount": state.restart_count,
        "started": state.pid is not None,
    }
    if state.pid is not None:
        container["containerID"] = f"podrunner://{state.pid}"
        container["state"] = {"running": {"startedAt": state.started_at}}
    elif state.phase in ("Succeeded", "Failed"):
        container["state"] = {
            "terminated": {
                "exitCode": state.last_exit_code if state.last_exit_code is not None else 0,
                "reason": "Completed" if state.phase == "Succeeded" else "Error",
                "startedAt": state.started_at,
                "finishedAt": state.finished_at,
            }
        }
    else:
        waiting: dict[str, Any] = {"reason": state.waiting_reason or "ContainerCreating"}
        if state.message:
            waiting["message"] = state.message
        container["state"] = {"waiting": waiting}
    if state.last_exit_code is not None and state.phase == "Running":
        container["lastState"] = {
            "terminated": {
                "exitCode": state.last_exit_code,
                "reason": "Completed" if state.last_exit_code == 0 else "Error",
                "finishedAt": state.finished_at,
            }
        }
    return {
        "phase": state.phase,
        "startTime": start_time,
        "conditions": [
            _condition("PodScheduled", True, start_time),
            _condition("Initialized", True, start_time),
            _condition("ContainersReady", state.ready, since),
            _condition("Ready", state.ready, since),
        ],
        "containerStatuses": [container],
    }


def should_restart(policy: str, exit_code: int) -> bool:
    """Whether ``restartPolicy`` restarts a container that exited with ``exit_code``."""
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    return False


def backoff(restarts: int, base: float = 1.0, cap: float = 30.0) -> float:
    """Seconds to wait before restart number ``restarts`` (doubling, capped; shorter than the kubelet's)."""
    return float(min(cap, base * 2 ** max(0, restarts - 1)))
