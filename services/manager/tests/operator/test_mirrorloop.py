"""The operator's periodic mirror repair brings every known HSMDevice's devices to the newest copies."""

from __future__ import annotations

import dataclasses

from hsm_manager.operator import config, devices, handlers, mirrorloop, runtime

from .. import fakes
from ..polling import wait_until
from .conftest import DEVICE, OPERATOR_NS

PATH = "app/db"


def known(*names: str) -> devices.Devices:
    found = devices.Devices(OPERATOR_NS)
    for name in names:
        found.add(OPERATOR_NS, name)
    return found


def behind(directory: fakes.FakeDirectory) -> fakes.FakeAgentClient:
    """hsm-a holds version 2 of PATH, hsm-b only version 1; returns hsm-b."""
    directory.clients["hsm-a"].write(PATH, {"k": b"v1"}, None)
    directory.clients["hsm-b"].write(PATH, {"k": b"v1"}, None)
    directory.clients["hsm-a"].write(PATH, {"k": b"v2"}, None)
    return directory.clients["hsm-b"]


def test_one_pass_copies_the_newest_copy_to_the_device_behind(directory: fakes.FakeDirectory) -> None:
    lagging = behind(directory)
    [report] = mirrorloop.MirrorLoop(directory, known(DEVICE), interval=0).repair_all()
    assert report.repaired == ((PATH, "hsm-b", "copy"),)
    assert lagging.read(PATH).data == {"k": b"v2"}


def test_a_device_without_agents_is_skipped(directory: fakes.FakeDirectory) -> None:
    lagging = behind(directory)
    reports = mirrorloop.MirrorLoop(directory, known("absent", DEVICE), interval=0).repair_all()
    assert [r.device for r in reports] == [DEVICE]
    assert lagging.state(PATH).version == 2


def test_the_loop_repairs_every_interval_until_stopped(directory: fakes.FakeDirectory) -> None:
    lagging = behind(directory)
    loop = mirrorloop.MirrorLoop(directory, known(DEVICE), interval=0.02)
    loop.start()
    try:
        wait_until(lambda: lagging.state(PATH).version == 2, what="the repair of hsm-b")
        directory.clients["hsm-a"].write(PATH, {"k": b"v3"}, None)
        wait_until(lambda: lagging.state(PATH).version == 3, what="the next repair")
    finally:
        loop.stop()
    assert not loop._thread.is_alive()


def test_an_interval_of_zero_starts_no_thread(directory: fakes.FakeDirectory) -> None:
    loop = mirrorloop.MirrorLoop(directory, known(DEVICE), interval=0)
    loop.start()
    assert not loop._thread.is_alive()
    loop.stop()


def test_the_started_operator_repairs_at_its_mirror_interval(
    cfg: config.OperatorConfig, cluster: fakes.FakeKube, directory: fakes.FakeDirectory
) -> None:
    lagging = behind(directory)
    wired = runtime.bootstrap(dataclasses.replace(cfg, mirror_interval=0.02), cluster, directory)  # type: ignore[arg-type]
    memo = handlers.memo_of(wired)
    handlers.start(memo=memo)
    try:
        wait_until(lambda: lagging.state(PATH).version == 2, what="the operator's repair of hsm-b")
    finally:
        handlers.shutdown(memo=memo)
