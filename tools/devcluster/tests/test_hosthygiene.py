"""hosthygiene's record of the host state: kept while a cluster runs, put back and dropped once none does.

The record holds the host's current values, so putting it back writes nothing, and the sweep of leftover
namespaces and cgroups is replaced by a recorder (simulated: the real one would remove those of any cluster
running on this machine, whose locks are not in the tests' own lock directory).
``tests/e2e/test_host_hygiene`` runs the real sweep.
"""

import json
import os
import pathlib

import pytest

from devcluster import hosthygiene, ipblock


@pytest.fixture(autouse=True)
def swept(monkeypatch: pytest.MonkeyPatch) -> list[set[int]]:
    calls: list[set[int]] = []

    def record(held: set[int]) -> list[int]:
        calls.append(set(held))
        return []

    monkeypatch.setattr(hosthygiene, "sweep", record)
    return calls


def _leave_a_record(lock_dir: pathlib.Path) -> pathlib.Path:
    lock_dir.mkdir()
    record = lock_dir / "sysctls.json"
    state = {"sysctls": hosthygiene.read_sysctls(), "netns_dir": hosthygiene.netns_dir_state()}
    record.write_text(json.dumps(state))
    return record


def test_a_record_left_by_a_dead_run_is_put_back_and_dropped(
    tmp_path: pathlib.Path, swept: list[set[int]]
) -> None:
    lock_dir = tmp_path / "locks"
    record = _leave_a_record(lock_dir)
    # The dead run's block lock is still on disk; nobody holds it.
    (lock_dir / "7.lock").touch()

    assert hosthygiene.clean_up_after_dead_runs(lock_dir) == set()
    assert not record.exists()
    assert swept == [set()]


def test_a_running_cluster_keeps_its_record(tmp_path: pathlib.Path, swept: list[set[int]]) -> None:
    lock_dir = tmp_path / "locks"
    record = _leave_a_record(lock_dir)
    block, fd = ipblock.claim(lock_dir)
    try:
        assert hosthygiene.clean_up_after_dead_runs(lock_dir) == {block}
        assert record.exists()
        assert swept == [{block}]
    finally:
        os.close(fd)
