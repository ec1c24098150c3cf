"""The mirroring service against in-memory agents (tests/fakes.py): writes, races, repair, PIN changes."""

from __future__ import annotations

import random
import threading

import pytest

from hsm_manager import kube
from hsm_manager.decide import model
from hsm_manager.gateway import errors as agent_errors
from hsm_manager.mirroring import devices, errors, fanout, groups, reads, service, writes

from . import fakes

FULL = "writing 'ns/x' needs 1 new object(s): 119 of 120 objects used, 0 free for new secrets"


@pytest.fixture
def directory() -> fakes.FakeDirectory:
    found = fakes.FakeDirectory()
    found.add("pair", "hsm-a")
    found.add("pair", "hsm-b")
    return found


@pytest.fixture
def mirror(directory: fakes.FakeDirectory) -> service.Mirror:
    return service.Mirror(directory, "ns")


def copies(directory: fakes.FakeDirectory, path: str) -> dict[str, tuple[int, dict[str, bytes]]]:
    return {
        name: (agent.paths[path][0].version, agent.paths[path][1])
        for name, agent in directory.clients.items()
        if path in agent.paths
    }


def test_a_write_reaches_every_device_at_one_version(
    mirror: service.Mirror, directory: fakes.FakeDirectory
) -> None:
    group = mirror.resolve(None)
    writes.create(group, "ns/x", {"k": b"1"}, None, "alice")
    written = writes.replace(group, "ns/x", {"k": b"2"}, None, "alice", expected=1)
    assert (written.version, written.partial) == (2, False)
    assert copies(directory, "ns/x") == {"hsm-a": (2, {"k": b"2"}), "hsm-b": (2, {"k": b"2"})}
    created = {agent.paths["ns/x"][2].created_at for agent in directory.clients.values()}
    assert len(created) == 1  # stamped once for every device


def test_a_device_down_makes_the_write_partial(
    mirror: service.Mirror, directory: fakes.FakeDirectory
) -> None:
    directory.clients["hsm-b"].down = True
    written = writes.create(mirror.resolve("pair"), "ns/x", {"k": b"1"}, None, "alice")
    assert written.partial
    assert [r.to_wire()["success"] for r in written.results] == [True, False]


def test_every_device_full_is_device_full_naming_each(
    mirror: service.Mirror, directory: fakes.FakeDirectory
) -> None:
    for agent in directory.clients.values():
        agent.failures["write"] = agent_errors.DeviceFull(agent.name, FULL)
    with pytest.raises(errors.DeviceFull) as caught:
        writes.create(mirror.resolve("pair"), "ns/x", {"k": b"1"}, None, "alice")
    assert caught.value.message == f"hsm-a: {FULL}; hsm-b: {FULL}"


def test_if_match_must_name_the_newest_version(mirror: service.Mirror) -> None:
    group = mirror.resolve("pair")
    writes.create(group, "ns/x", {"k": b"1"}, None, "alice")
    with pytest.raises(errors.VersionConflict) as caught:
        writes.replace(group, "ns/x", {"k": b"2"}, None, "alice", expected=7)
    assert caught.value.details["currentVersion"] == 1
    with pytest.raises(errors.AlreadyExists):
        writes.create(group, "ns/x", {"k": b"3"}, None, "alice")


class Racing(fakes.FakeAgentClient):
    """An agent on which, the first time it is written, another writer's write lands just before."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.rival: object = None

    def write(self, path, data, metadata, *, expected=None, version=0, writer=""):  # type: ignore[no-untyped-def]
        rival, self.rival = self.rival, None
        if callable(rival):
            rival()
        return super().write(path, data, metadata, expected=expected, version=version, writer=writer)


@pytest.mark.parametrize("if_match", [True, False])
def test_two_writers_of_one_version_never_leave_two_values(if_match: bool) -> None:
    directory = fakes.FakeDirectory()
    first = directory.add("pair", Racing("hsm-a"))
    directory.add("pair", "hsm-b")
    group = service.Mirror(directory, "ns").resolve("pair")
    writes.create(group, "ns/x", {"k": b"0"}, None, "setup")
    expected = 1 if if_match else None
    outcomes: list[writes.Written] = []

    def rival() -> None:
        outcomes.append(writes.replace(group, "ns/x", {"k": b"rival"}, None, "bob", expected))

    first.rival = rival
    if if_match:
        with pytest.raises(errors.VersionConflict):
            writes.replace(group, "ns/x", {"k": b"mine"}, None, "alice", expected)
        assert copies(directory, "ns/x") == {"hsm-a": (2, {"k": b"rival"}), "hsm-b": (2, {"k": b"rival"})}
    else:
        mine = writes.replace(group, "ns/x", {"k": b"mine"}, None, "alice", expected)
        assert (mine.version, mine.partial) == (3, False)
        assert copies(directory, "ns/x") == {"hsm-a": (3, {"k": b"mine"}), "hsm-b": (3, {"k": b"mine"})}
    assert [w.partial for w in outcomes] == [False]


def test_a_settled_write_catches_up_with_a_device_a_racer_moved(directory: fakes.FakeDirectory) -> None:
    group = service.Mirror(directory, "ns").resolve("pair")
    writes.create(group, "ns/x", {"k": b"0"}, None, "setup")
    # hsm-b moved on (to version 2) after this write looked, yet below the version it writes (3 > 2).
    directory.clients["hsm-a"].put("ns/x", {"k": b"0"}, model.PathState(2, "c"))
    snapshot_b = directory.clients["hsm-b"].paths["ns/x"]
    written = writes.replace(group, "ns/x", {"k": b"new"}, None, "alice", None)
    assert not written.partial
    assert copies(directory, "ns/x")["hsm-b"] == (3, {"k": b"new"})
    assert snapshot_b[0].version == 1


def test_reads_take_the_newest_copy(mirror: service.Mirror, directory: fakes.FakeDirectory) -> None:
    directory.clients["hsm-a"].put("ns/x", {"k": b"old"}, model.PathState(1, "c1", updated_at="t1"))
    directory.clients["hsm-b"].put("ns/x", {"k": b"new"}, model.PathState(2, "c2", updated_at="t2"))
    group = mirror.resolve("pair")
    secret, device = reads.read(group, "ns/x")
    assert (secret.data, device) == ({"k": b"new"}, "hsm-b")
    assert not reads.versions(group, "ns/x").in_sync


def test_repair_brings_every_device_to_the_newest_copy(
    mirror: service.Mirror, directory: fakes.FakeDirectory
) -> None:
    directory.clients["hsm-b"].down = True
    writes.create(mirror.resolve("pair"), "ns/x", {"k": b"1"}, None, "alice")
    directory.clients["hsm-b"].down = False
    report = mirror.repair("pair")
    assert report.repaired == (("ns/x", "hsm-b", "copy"),)
    assert copies(directory, "ns/x") == {"hsm-a": (1, {"k": b"1"}), "hsm-b": (1, {"k": b"1"})}
    assert mirror.repair("pair").repaired == ()


def test_a_refused_pin_change_is_rolled_back(mirror: service.Mirror, directory: fakes.FakeDirectory) -> None:
    directory.clients["hsm-b"].pin = "other"

    class Pins:
        def update_pin(self, namespace: str, device: str, new_pin: str) -> None:
            raise AssertionError("the Secret must not change")

    with pytest.raises(errors.PinRejected) as caught:
        devices.change_pin(mirror.resolve("pair"), Pins(), "1234", "5678")
    assert caught.value.details["rolledBack"] == ["hsm-a"]
    assert directory.clients["hsm-a"].pin == "1234"
    assert "1234" not in caught.value.message


def test_a_pin_secret_that_cannot_be_written_rolls_every_device_back(
    mirror: service.Mirror, directory: fakes.FakeDirectory
) -> None:
    class Pins:
        def update_pin(self, namespace: str, device: str, new_pin: str) -> None:
            raise kube.NotFound("Secret pin not found")

    with pytest.raises(errors.DeviceNotFound) as caught:
        devices.change_pin(mirror.resolve("pair"), Pins(), "1234", "5678")
    assert caught.value.details["rolledBack"] == ["hsm-a", "hsm-b"]
    assert {agent.pin for agent in directory.clients.values()} == {"1234"}


def test_an_unknown_or_ambiguous_device_is_refused(
    mirror: service.Mirror, directory: fakes.FakeDirectory
) -> None:
    with pytest.raises(errors.DeviceNotFound):
        mirror.resolve("nope")
    directory.add("other", "hsm-c")
    with pytest.raises(errors.AmbiguousDevice):
        mirror.resolve(None)


def test_a_device_whose_agents_are_all_down_is_unavailable_not_unknown(
    mirror: service.Mirror, directory: fakes.FakeDirectory
) -> None:
    directory.unready("hsm-a")
    directory.unready("hsm-b")
    with pytest.raises(errors.DeviceUnavailable, match="none is Ready"):
        mirror.resolve("pair")


# ------------------------------------------------------------------ round trips


def test_a_read_of_agreeing_devices_reads_the_first_and_asks_the_others_only_their_state(
    mirror: service.Mirror, directory: fakes.FakeDirectory
) -> None:
    group = mirror.resolve("pair")
    writes.create(group, "ns/x", {"k": b"1"}, None, "alice")
    for agent in directory.clients.values():
        agent.calls.clear()
    secret, device = reads.read(group, "ns/x")
    assert (secret.data, device) == ({"k": b"1"}, "hsm-a")
    assert {name: agent.calls for name, agent in directory.clients.items()} == {
        "hsm-a": ["read"],
        "hsm-b": ["state"],
    }


def test_a_read_takes_a_newer_copy_from_a_later_device(
    mirror: service.Mirror, directory: fakes.FakeDirectory
) -> None:
    directory.clients["hsm-a"].put("ns/x", {"k": b"old"}, model.PathState(version=1))
    directory.clients["hsm-b"].put("ns/x", {"k": b"new"}, model.PathState(version=2))
    secret, device = reads.read(mirror.resolve("pair"), "ns/x")
    assert (secret.data, device) == ({"k": b"new"}, "hsm-b")


def test_a_read_of_equal_versions_with_different_data_follows_the_conflict_order(
    mirror: service.Mirror, directory: fakes.FakeDirectory
) -> None:
    directory.clients["hsm-a"].put(
        "ns/x", {"k": b"a"}, model.PathState(version=2, updated_at="2026-01-01T00:00:00Z")
    )
    directory.clients["hsm-b"].put(
        "ns/x", {"k": b"b"}, model.PathState(version=2, updated_at="2026-01-02T00:00:00Z")
    )
    secret, device = reads.read(mirror.resolve("pair"), "ns/x")
    assert (secret.data, device) == ({"k": b"b"}, "hsm-b")


def test_a_secret_deleted_on_a_later_device_reads_as_not_found(
    mirror: service.Mirror, directory: fakes.FakeDirectory
) -> None:
    directory.clients["hsm-a"].put("ns/x", {"k": b"1"}, model.PathState(version=1))
    directory.clients["hsm-b"].put("ns/x", {}, model.PathState(version=2, deleted=True))
    with pytest.raises(errors.NotFound):
        reads.read(mirror.resolve("pair"), "ns/x")


def test_a_read_with_the_first_device_down_reads_the_other_and_asks_the_first_once(
    mirror: service.Mirror, directory: fakes.FakeDirectory
) -> None:
    group = mirror.resolve("pair")
    writes.create(group, "ns/x", {"k": b"1"}, None, "alice")
    first = directory.clients["hsm-a"]
    first.down = True
    first.calls.clear()
    secret, device = reads.read(group, "ns/x")
    assert (secret.data, device) == ({"k": b"1"}, "hsm-b")
    assert first.calls == ["read"]


def test_a_replace_asks_each_device_once_before_writing_it(
    mirror: service.Mirror, directory: fakes.FakeDirectory
) -> None:
    group = mirror.resolve("pair")
    writes.create(group, "ns/x", {"k": b"1"}, None, "alice")
    for agent in directory.clients.values():
        agent.calls.clear()
    writes.replace(group, "ns/x", {"k": b"2"}, None, "alice", expected=None)
    assert {name: agent.calls for name, agent in directory.clients.items()} == {
        "hsm-a": ["metadata", "write"],
        "hsm-b": ["state", "write"],
    }


def test_a_replace_keeps_the_creation_time_held_only_by_a_later_device(
    mirror: service.Mirror, directory: fakes.FakeDirectory
) -> None:
    later = directory.clients["hsm-b"]
    later.put("ns/x", {"k": b"1"}, model.PathState(version=3))
    state, data, _ = later.paths["ns/x"]
    later.paths["ns/x"] = (state, data, model.Metadata(description="d", created_at="2026-01-01T00:00:00Z"))
    written = writes.replace(mirror.resolve("pair"), "ns/x", {"k": b"2"}, None, "alice", expected=3)
    assert written.version == 4
    kept = model.Metadata(description="d", created_at="2026-01-01T00:00:00Z")
    assert [agent.paths["ns/x"][2] for agent in directory.clients.values()] == [kept, kept]


def test_a_replace_over_a_tombstone_on_the_first_device_writes_above_it(
    mirror: service.Mirror, directory: fakes.FakeDirectory
) -> None:
    directory.clients["hsm-a"].put("ns/x", {}, model.PathState(version=5, deleted=True))
    written = writes.replace(mirror.resolve("pair"), "ns/x", {"k": b"1"}, None, "alice", expected=0)
    assert copies(directory, "ns/x") == {"hsm-a": (6, {"k": b"1"}), "hsm-b": (6, {"k": b"1"})}
    assert not written.partial


def test_devices_of_a_group_are_asked_at_the_same_time(mirror: service.Mirror) -> None:
    # Each call waits until the other has started: asked one after the other, the barrier breaks.
    meeting = threading.Barrier(2, timeout=10)
    answers = fanout.each(mirror.resolve("pair").members, lambda member: (meeting.wait(), member.name)[1])
    assert answers == ["hsm-a", "hsm-b"]


def test_a_device_that_fails_answers_with_its_error(
    mirror: service.Mirror, directory: fakes.FakeDirectory
) -> None:
    directory.clients["hsm-b"].down = True
    answers = fanout.each(mirror.resolve("pair").members, lambda member: member.client.state("ns/x"))
    assert answers[0] == model.ABSENT
    assert isinstance(answers[1], agent_errors.Unavailable)


def test_a_one_device_listing_shows_no_deleted_secret() -> None:
    single = fakes.FakeDirectory()
    single.add("solo", "hsm-s")
    group = service.Mirror(single, "ns").resolve("solo")
    writes.create(group, "ns/kept", {"k": b"1"}, None, "alice")
    writes.create(group, "ns/gone", {"k": b"1"}, None, "alice")
    writes.delete(group, "ns/gone", "alice", None)
    listed = reads.list_live(group, "ns/")
    assert (list(listed.entries), listed.unavailable) == (["ns/kept"], ())


def test_a_one_device_listing_of_a_device_down_is_unavailable() -> None:
    single = fakes.FakeDirectory()
    single.add("solo", "hsm-s")
    single.clients["hsm-s"].down = True
    with pytest.raises(errors.DeviceUnavailable, match="hsm-s"):
        reads.list_live(service.Mirror(single, "ns").resolve("solo"), "ns/")


def walk(group: groups.Group, prefix: str, limit: int) -> list[list[str]]:
    """Every page of a listing, following each page's last path while more follow."""
    pages: list[list[str]] = []
    after = ""
    while True:
        listed = reads.list_live(group, prefix, after, limit)
        pages.append(list(listed.entries))
        if not listed.more:
            return pages
        after = pages[-1][-1]


class CountingAgent(fakes.FakeAgentClient):
    """A fake agent that records how many entries each listing answered."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.answered: list[int] = []

    def entries(
        self, prefix: str, include_deleted: bool, *, after: str = "", limit: int = 0
    ) -> list[model.Entry]:
        found = super().entries(prefix, include_deleted, after=after, limit=limit)
        self.answered.append(len(found))
        return found


def test_a_one_device_listing_pages_and_asks_only_for_the_page() -> None:
    single = fakes.FakeDirectory()
    agent = CountingAgent("hsm-s")
    single.add("solo", agent)
    group = service.Mirror(single, "ns").resolve("solo")
    for i in range(7):
        writes.create(group, f"ns/s{i}", {"k": b"1"}, None, "alice")
    writes.delete(group, "ns/s3", "alice", None)
    assert walk(group, "ns/", 2) == [["ns/s0", "ns/s1"], ["ns/s2", "ns/s4"], ["ns/s5", "ns/s6"]]
    agent.answered.clear()
    assert list(reads.list_live(group, "ns/", "ns/s1", 2).entries) == ["ns/s2", "ns/s4"]
    assert agent.answered == [3]  # the page and one more, to tell whether more follow


def test_a_paged_listing_of_two_devices_weighs_every_copy_across_page_ends(
    mirror: service.Mirror, directory: fakes.FakeDirectory
) -> None:
    a, b = directory.clients["hsm-a"], directory.clients["hsm-b"]
    live, dead = model.PathState(version=1), model.PathState(version=2, deleted=True)
    # hsm-a holds every path; hsm-b deleted some later and holds paths hsm-a never saw.
    for i in range(12):
        a.put(f"ns/p{i:02d}", {"k": b"1"}, live)
    for i in (1, 2, 3, 4, 5, 9):
        b.put(f"ns/p{i:02d}", {}, dead)
    for name in ("ns/p03x", "ns/p10x"):
        b.put(name, {"k": b"1"}, live)
    expected = ["ns/p00", "ns/p03x", "ns/p06", "ns/p07", "ns/p08", "ns/p10", "ns/p10x", "ns/p11"]
    group = mirror.resolve("pair")
    assert list(reads.list_live(group, "ns/").entries) == expected
    for limit in (1, 2, 3, 5, 8, 20):
        pages = walk(group, "ns/", limit)
        assert [path for page in pages for path in page] == expected
        assert all(len(page) == limit for page in pages[:-1])


def test_a_paged_listing_with_one_device_down_lists_the_other_and_names_it(
    mirror: service.Mirror, directory: fakes.FakeDirectory
) -> None:
    for i in range(5):
        directory.clients["hsm-a"].put(f"ns/p{i}", {"k": b"1"}, model.PathState(version=1))
    directory.clients["hsm-b"].down = True
    listed = reads.list_live(mirror.resolve("pair"), "ns/", "ns/p1", 2)
    assert (list(listed.entries), listed.more, listed.unavailable) == (["ns/p2", "ns/p3"], True, ("hsm-b",))


@pytest.mark.parametrize("seed", range(20))
def test_paging_through_two_devices_lists_what_the_whole_listing_does(seed: int) -> None:
    rng = random.Random(seed)
    pair = fakes.FakeDirectory()
    for name in ("hsm-a", "hsm-b"):
        pair.add("pair", name)
        for i in rng.sample(range(40), rng.randint(0, 40)):
            state = model.PathState(version=rng.randint(1, 3), deleted=rng.random() < 0.4)
            pair.clients[name].put(f"ns/p{i:02d}", {} if state.deleted else {"k": b"1"}, state)
    group = service.Mirror(pair, "ns").resolve("pair")
    whole = list(reads.list_live(group, "ns/").entries)
    for limit in (1, 2, 3, 7):
        assert [path for page in walk(group, "ns/", limit) for path in page] == whole
