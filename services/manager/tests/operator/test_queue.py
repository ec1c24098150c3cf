import threading
import time
from collections.abc import Callable

from hsm_manager.operator import queue


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_key_put_while_waiting_runs_once() -> None:
    runs: list[queue.Key] = []
    gate = threading.Event()

    def work(key: queue.Key, verify: bool) -> None:
        gate.wait(5)
        runs.append(key)

    q = queue.SyncQueue(work, workers=1)
    q.put(("ns", "blocker"))
    q.start()
    wait_for(lambda: q.backlog() == 1)  # the blocker is running; nothing else waits
    for _ in range(5):
        q.put(("ns", "a"))
    gate.set()
    wait_for(lambda: q.backlog() == 0)
    q.stop()
    assert runs == [("ns", "blocker"), ("ns", "a")]


def test_key_put_while_running_runs_again_afterwards() -> None:
    started = threading.Event()
    release = threading.Event()
    runs: list[float] = []

    def work(key: queue.Key, verify: bool) -> None:
        runs.append(time.monotonic())
        if len(runs) == 1:
            started.set()
            release.wait(5)

    q = queue.SyncQueue(work, workers=2)
    q.start()
    q.put(("ns", "a"))
    assert started.wait(5)
    q.put(("ns", "a"))
    time.sleep(0.05)  # give a second worker the chance to (wrongly) pick the key up
    assert len(runs) == 1
    release.set()
    wait_for(lambda: len(runs) == 2 and q.backlog() == 0)
    q.stop()


def test_failing_work_does_not_stop_the_worker() -> None:
    runs: list[queue.Key] = []

    def work(key: queue.Key, verify: bool) -> None:
        runs.append(key)
        if key[1] == "bad":
            raise RuntimeError("boom")

    q = queue.SyncQueue(work, workers=1)
    q.start()
    q.put(("ns", "bad"))
    q.put(("ns", "good"))
    wait_for(lambda: len(runs) == 2)
    q.stop()
    assert runs[-1] == ("ns", "good")


def test_a_verifying_put_reaches_the_next_run_of_its_key_only() -> None:
    runs: list[tuple[queue.Key, bool]] = []
    started = threading.Event()
    release = threading.Event()

    def work(key: queue.Key, verify: bool) -> None:
        runs.append((key, verify))
        if len(runs) == 1:
            started.set()
            release.wait(5)

    q = queue.SyncQueue(work, workers=1)
    q.start()
    q.put(("ns", "a"))
    assert started.wait(5)
    q.put(("ns", "a"), verify=True)  # while the first run holds the key
    q.put(("ns", "b"))
    release.set()
    wait_for(lambda: q.backlog() == 0 and len(runs) == 3)
    q.put(("ns", "a"))
    wait_for(lambda: len(runs) == 4)
    q.stop()
    a, b = ("ns", "a"), ("ns", "b")
    assert sorted(runs) == [(a, False), (a, False), (a, True), (b, False)]
    assert runs[0] == (a, False)
    assert runs[-1] == (a, False)
