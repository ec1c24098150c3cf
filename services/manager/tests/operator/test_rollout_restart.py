"""rolloutRestartTargets in sync passes, against in-memory agents and API server."""

from __future__ import annotations

import datetime
from typing import Any

import prometheus_client
import pytest

from hsm_common import constants
from hsm_manager import kube
from hsm_manager.operator import config, restarts, runtime

from .. import fakes, polling
from .conftest import APP_NS, hsmsecret

KEY = (APP_NS, "db")
PATH = f"{APP_NS}/db"
WEB = {"kind": "Deployment", "name": "web"}


def deployment(name: str = "web") -> kube.Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": APP_NS},
        "spec": {"template": {"metadata": {"labels": {"app": name}}}},
    }


def restarted_at(cluster: fakes.FakeKube, name: str = "web") -> str | None:
    found = cluster.stored("Deployment", APP_NS, name)
    assert found is not None
    annotations = found["spec"]["template"]["metadata"].get("annotations") or {}
    return annotations.get(restarts.RESTARTED_AT)


def status(cluster: fakes.FakeKube) -> dict[str, Any]:
    found = cluster.stored(constants.KIND_SECRET, APP_NS, "db")
    assert found is not None
    result: dict[str, Any] = found["status"]
    return result


def condition(cluster: fakes.FakeKube) -> dict[str, Any]:
    return next(c for c in status(cluster)["conditions"] if c["type"] == "RolloutRestarted")


def respec(cluster: fakes.FakeKube, **spec: Any) -> None:
    """Change the HSMSecret's spec, keeping its status (as an edit by its user does)."""
    found = cluster.stored(constants.KIND_SECRET, APP_NS, "db")
    assert found is not None
    found["spec"].update(spec)
    cluster.add(found)


def write(directory: fakes.FakeDirectory, password: bytes) -> None:
    directory.clients["hsm-a"].write(PATH, {"password": password}, None)


def restarts_counted(kind: str = "Deployment") -> float:
    labels = {"namespace": APP_NS, "kind": kind}
    return prometheus_client.REGISTRY.get_sample_value("hsm_manager_rollout_restarts_total", labels) or 0.0


@pytest.fixture
def synced(rt: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory) -> runtime.Runtime:
    """An HSMSecret with one Deployment target, its Secret created by a first pass."""
    cluster.add(deployment())
    cluster.add(hsmsecret(rolloutRestartTargets=[WEB], minRestartInterval=60))
    write(directory, b"one")
    assert rt.syncer.run(KEY) == "written"
    return rt


def test_the_first_creation_of_the_secret_restarts_nothing(
    synced: runtime.Runtime, cluster: fakes.FakeKube
) -> None:
    assert restarted_at(cluster) is None
    assert "RolloutRestarted" not in cluster.reasons()
    assert "lastRolloutRestart" not in status(cluster)


def test_a_new_value_on_the_hsm_restarts_the_target_with_an_event_and_a_metric(
    synced: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    before = restarts_counted()
    write(directory, b"two")
    assert synced.syncer.run(KEY) == "written"
    stamp = restarted_at(cluster)
    assert stamp is not None
    at = datetime.datetime.fromisoformat(stamp)
    assert at == datetime.datetime.fromisoformat(status(cluster)["lastRolloutRestart"])
    assert (condition(cluster)["status"], condition(cluster)["message"]) == (
        "True",
        "restarted deployment/web",
    )
    event = next(e for e in cluster.events if e.reason == "RolloutRestarted")
    assert (event.message, event.warning) == ("restarted deployment/web: the Secret's data changed", False)
    assert restarts_counted() == before + 1


def test_new_labels_rewrite_the_secret_without_a_restart(
    synced: runtime.Runtime, cluster: fakes.FakeKube
) -> None:
    respec(cluster, target={"labels": {"team": "payments"}})
    assert synced.syncer.run(KEY) == "written"
    assert restarted_at(cluster) is None
    assert "RolloutRestarted" not in cluster.reasons()


def test_a_missing_target_warns_and_the_secret_still_syncs(
    synced: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    respec(cluster, rolloutRestartTargets=[WEB, {"kind": "StatefulSet", "name": "gone"}])
    write(directory, b"two")
    assert synced.syncer.run(KEY) == "written"
    assert status(cluster)["syncStatus"] == "InSync"
    assert restarted_at(cluster) is not None
    (warning,) = [e for e in cluster.events if e.warning]
    assert warning.reason == "RolloutRestartFailed"
    assert warning.message == "statefulset/gone was not restarted: it does not exist in this namespace"
    assert (condition(cluster)["status"], condition(cluster)["reason"]) == ("False", "TargetNotFound")
    assert "restarted deployment/web" in condition(cluster)["message"]


def test_a_target_the_operator_may_not_patch_warns_about_rbac_and_the_secret_still_syncs(
    synced: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    cluster.failures["patch_workload"] = kube.KubeError("patch Deployment app/web: 403 Forbidden", 403)
    write(directory, b"two")
    assert synced.syncer.run(KEY) == "written"
    assert status(cluster)["syncStatus"] == "InSync"
    (warning,) = [e for e in cluster.events if e.warning]
    assert "deployment/web was not restarted: the operator may not patch it" in warning.message
    assert condition(cluster)["reason"] == "TargetForbidden"


def test_a_change_inside_the_interval_restarts_once_the_interval_ends(
    synced: runtime.Runtime, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    respec(cluster, minRestartInterval=1)
    write(directory, b"two")
    synced.syncer.run(KEY)
    first = restarted_at(cluster)
    write(directory, b"three")
    assert synced.syncer.run(KEY) == "written"
    assert restarted_at(cluster) == first
    assert status(cluster)["rolloutRestartPending"] is True
    polling.wait_until(lambda: synced.queue.backlog() == 1, what="the pass queued when the interval ends")
    synced.syncer.run(KEY)
    assert restarted_at(cluster) != first
    assert "rolloutRestartPending" not in status(cluster)
    assert cluster.reasons().count("RolloutRestarted") == 2


def test_a_waiting_restart_survives_an_operator_restart(
    synced: runtime.Runtime,
    cfg: config.OperatorConfig,
    cluster: fakes.FakeKube,
    directory: fakes.FakeDirectory,
) -> None:
    respec(cluster, minRestartInterval=1)
    write(directory, b"two")
    synced.syncer.run(KEY)
    write(directory, b"three")
    synced.syncer.run(KEY)
    first = restarted_at(cluster)
    synced.stop()
    again = runtime.bootstrap(cfg, cluster, directory)  # type: ignore[arg-type]
    try:
        polling.wait_until(
            lambda: again.syncer.run(KEY, verify=True) and restarted_at(cluster) != first,
            what="the waiting restart after the interval",
        )
    finally:
        again.stop()
    assert "rolloutRestartPending" not in status(cluster)
