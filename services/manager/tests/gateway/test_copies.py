"""Copies of an agent's answers (gateway.copies) against a real hsm-agent: served again without a call, and
never once a write that replaced them has returned, whichever client wrote."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from hsm_manager.gateway import client, endpoints, pki
from hsmproto import channel

from .. import fakes
from ..polling import wait_until
from .conftest import StaticTLS


class Worker:
    """One API worker's view of the agent: a registry keeping copies, and the calls it made."""

    def __init__(self, ca: pki.KeyPair, copies_bytes: int) -> None:
        issued = pki.issue(ca, pki.CLIENT_NAME, client=True)
        self.calls: list[str] = []
        self.registry = endpoints.AgentRegistry(
            fakes.FakeKube(),
            StaticTLS(channel.ClientTLS(ca.cert, issued.cert, issued.key)),
            timeout=5,
            observe=lambda method, outcome, seconds: self.calls.append(method),
            copies_bytes=copies_bytes,
        )

    def client(self, agent: endpoints.AgentEndpoint) -> client.AgentClient:
        return self.registry.client(agent)

    def read_calls(self, agent: endpoints.AgentEndpoint, path: str) -> int:
        """How many calls one read made."""
        before = len(self.calls)
        self.client(agent).read(path)
        return len(self.calls) - before

    def wait_for_copies(self, agent: endpoints.AgentEndpoint, path: str) -> None:
        """Until reads of path are served from a copy (the Follow stream is up and its lease granted)."""
        wait_until(lambda: self.read_calls(agent, path) == 0, 10, "a read served from a copy")


@pytest.fixture
def make_worker(ca: pki.KeyPair) -> Iterator[Callable[[int], Worker]]:
    """Workers with a budget of copies; every one is closed at the end."""
    made: list[Worker] = []

    def make(copies_bytes: int) -> Worker:
        made.append(Worker(ca, copies_bytes))
        return made[-1]

    yield make
    for found in made:
        found.registry.close()


@pytest.fixture
def worker(make_worker: Callable[[int], Worker]) -> Worker:
    return make_worker(2**20)


def test_a_kept_read_and_state_ask_the_agent_nothing(
    worker: Worker, agent: endpoints.AgentEndpoint, agent_client: client.AgentClient
) -> None:
    agent_client.write("ns/k-kept", {"k": b"v1"}, None)
    worker.wait_for_copies(agent, "ns/k-kept")
    reader = worker.client(agent)
    assert reader.read("ns/k-kept").data == {"k": b"v1"}
    reader.state("ns/k-kept")
    before = len(worker.calls)
    assert reader.state("ns/k-kept").version == 1
    assert reader.read("ns/k-kept").data == {"k": b"v1"}
    assert worker.calls[before:] == []


def test_a_state_asked_without_copy_is_neither_served_from_one_nor_kept(
    worker: Worker, agent: endpoints.AgentEndpoint, agent_client: client.AgentClient
) -> None:
    agent_client.write("ns/k-uncopied", {"k": b"v1"}, None)
    worker.wait_for_copies(agent, "ns/k-uncopied")
    reader = worker.client(agent)
    before = len(worker.calls)
    reader.state("ns/k-uncopied", copy=False)
    reader.state("ns/k-uncopied", copy=False)
    reader.state("ns/k-uncopied")
    assert worker.calls[before:] == ["GetChecksum", "GetChecksum", "GetChecksum"]


def test_after_a_write_through_another_client_returns_every_read_answers_it(
    worker: Worker, agent: endpoints.AgentEndpoint, agent_client: client.AgentClient
) -> None:
    agent_client.write("ns/k-fresh", {"k": b"0"}, None)
    worker.wait_for_copies(agent, "ns/k-fresh")
    reader = worker.client(agent)
    for n in range(1, 31):
        assert reader.read("ns/k-fresh").data == {"k": str(n - 1).encode()}
        assert reader.state("ns/k-fresh").version == n
        agent_client.write("ns/k-fresh", {"k": str(n).encode()}, None)
        assert reader.read("ns/k-fresh").data == {"k": str(n).encode()}
        assert reader.state("ns/k-fresh").version == n + 1
    agent_client.delete("ns/k-fresh")
    assert reader.state("ns/k-fresh").deleted


def test_a_kept_list_page_shows_a_path_written_through_another_client(
    worker: Worker, agent: endpoints.AgentEndpoint, agent_client: client.AgentClient
) -> None:
    agent_client.write("pages/a", {"k": b"1"}, None)
    reader = worker.client(agent)

    def page_calls() -> int:
        before = len(worker.calls)
        reader.entries("pages/", include_deleted=False, limit=10)
        return len(worker.calls) - before

    wait_until(lambda: page_calls() == 0, 10, "a page served from a copy")
    agent_client.write("pages/b", {"k": b"2"}, None)
    assert [e.path for e in reader.entries("pages/", include_deleted=False, limit=10)] == [
        "pages/a",
        "pages/b",
    ]
    agent_client.delete("pages/a")
    assert [e.path for e in reader.entries("pages/", include_deleted=False, limit=10)] == ["pages/b"]
    before = len(worker.calls)
    reader.entries("pages/", include_deleted=False)  # a whole listing is never kept
    reader.entries("pages/", include_deleted=False)
    assert worker.calls[before:] == ["ListSecrets", "ListSecrets"]


def test_two_workers_keep_copies_of_the_same_path_and_both_drop_them(
    make_worker: Callable[[int], Worker], worker: Worker, agent: endpoints.AgentEndpoint
) -> None:
    other = make_worker(2**20)
    worker.client(agent).write("ns/k-two", {"k": b"v1"}, None)
    worker.wait_for_copies(agent, "ns/k-two")
    other.wait_for_copies(agent, "ns/k-two")
    other.client(agent).write("ns/k-two", {"k": b"v2"}, None)
    assert worker.client(agent).read("ns/k-two").data == {"k": b"v2"}
    assert other.client(agent).read("ns/k-two").data == {"k": b"v2"}


def test_copies_stay_within_their_budget(
    make_worker: Callable[[int], Worker], agent: endpoints.AgentEndpoint
) -> None:
    small = make_worker(1500)
    writer = small.client(agent)
    writer.write("ns/k-first", {"k": b"x" * 1000}, None)
    writer.write("ns/k-second", {"k": b"y" * 1000}, None)
    small.wait_for_copies(agent, "ns/k-first")
    assert small.read_calls(agent, "ns/k-second") == 1  # kept in place of the first
    assert small.read_calls(agent, "ns/k-second") == 0
    assert small.read_calls(agent, "ns/k-first") == 1


def test_without_a_budget_every_read_asks_the_agent(
    make_worker: Callable[[int], Worker], agent: endpoints.AgentEndpoint
) -> None:
    plain = make_worker(0)
    plain.client(agent).write("ns/k-plain", {"k": b"v"}, None)
    assert [plain.read_calls(agent, "ns/k-plain") for _ in range(3)] == [1, 1, 1]
    assert "Follow" not in plain.calls


def test_closing_the_directory_drops_the_copies(worker: Worker, agent: endpoints.AgentEndpoint) -> None:
    kept = worker.client(agent)
    kept.write("ns/k-closed", {"k": b"v"}, None)
    worker.wait_for_copies(agent, "ns/k-closed")
    worker.registry.close()
    calls = len(worker.calls)
    # A copy would answer; the closed channel refuses the call instead.
    with pytest.raises(ValueError, match="closed channel"):
        kept.read("ns/k-closed")
    assert len(worker.calls) > calls
