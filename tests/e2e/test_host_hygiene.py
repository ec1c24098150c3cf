"""Real nodes change the host (the kubelet's sysctls, ``/run/netns``, network namespaces, cgroups, processes);
``down``, and the next start after a run that was killed, put every one of them back.

Each test starts its own small cluster whose nodes load only the sandbox image: what is compared is the
host, not the system on it. No other cluster may run meanwhile (``make test-e2e`` runs this module first,
on its own), or the last cluster to stop, which restores the host, would not be this one. What an earlier
run that was killed left behind is cleaned up first, as any start would: the "before" picture is the host's
own state, not that of a dead cluster.
"""

import os
import pathlib
import signal

import pytest

from devcluster import build, cluster, hosthygiene, hoststate, images, kubectl, process, testkit


@pytest.fixture(autouse=True)
def alone_on_the_machine() -> None:
    build.build()
    others = hosthygiene.clean_up_after_dead_runs()
    assert not others, f"other devclusters run on this machine (blocks {sorted(others)}); stop them first"


def _settings(run_dir: pathlib.Path) -> cluster.Settings:
    """Made before the "before" picture: podman, asked for the sandbox image, may unmount its own storage
    mount on the way out, which is podman's doing, not the nodes'."""
    pause = images.pause_image()
    return cluster.Settings(
        run_dir=run_dir, images=(images.archive(pause),), sandbox_image=images.PAUSE_IMAGE
    )


def _run_a_pod(running: cluster.Cluster) -> None:
    """A pod on each node, so containers, shims, pod network namespaces and their mounts exist."""
    for node in running.node_names():
        overrides = f'{{"spec": {{"nodeName": "{node}"}}}}'
        kubectl.run(
            running.kubeconfig, "run", f"sleeper-{node}", f"--image={images.PAUSE_IMAGE}",
            "--image-pull-policy=Never", f"--overrides={overrides}",
        )  # fmt: skip
    testkit.poll(
        lambda: (
            kubectl.run(running.kubeconfig, "get", "pods", "-o", "jsonpath={.items[*].status.phase}").split()
            == ["Running", "Running"]
        ),
        60,
        "both pods Running",
    )


def test_down_leaves_the_host_as_it_was(tmp_path: pathlib.Path) -> None:
    settings = _settings(tmp_path / "run")
    before = hoststate.capture()
    running = cluster.up(settings)
    try:
        _run_a_pod(running)
        during = hoststate.capture()
    finally:
        cluster.down(running.run_dir)
    # The nodes did change the host, or this test would prove nothing.
    assert hoststate.differences(before, during)
    assert hoststate.differences(before, hoststate.capture()) == []


def test_the_next_start_cleans_up_after_a_killed_run(tmp_path: pathlib.Path) -> None:
    killed_settings, second_settings = _settings(tmp_path / "killed"), _settings(tmp_path / "second")
    before = hoststate.capture()
    killed = cluster.up(killed_settings)
    _run_a_pod(killed)
    # As a crash would leave it: every process the cluster started dies at once, cleanup never runs.
    for proc in killed.processes:
        os.kill(proc.pid, signal.SIGKILL)
    testkit.poll(
        lambda: not any(process.is_alive(p) for p in killed.processes), 30, "the killed processes gone"
    )
    left = hoststate.differences(before, hoststate.capture())
    assert any("cgroups new" in line for line in left), left
    assert any("node_processes new" in line for line in left), left
    second = cluster.up(second_settings)
    cluster.down(second.run_dir)
    assert hoststate.differences(before, hoststate.capture()) == []
