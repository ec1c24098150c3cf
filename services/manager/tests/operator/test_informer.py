"""The informer against a scripted API server: lists, watches from the right version, relists when told."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from hsm_manager import kube
from hsm_manager.operator import informer

from ..polling import wait_until


def obj(name: str, version: str) -> kube.Obj:
    return {"metadata": {"namespace": "app", "name": name, "resourceVersion": version, "labels": {"o": name}}}


class Scripted:
    """Answers each list with the next listing and each watch with the next script (events or an error)."""

    def __init__(
        self, listings: list[list[kube.Obj]], watches: list[list[kube.Obj] | kube.KubeError]
    ) -> None:
        self._listings = listings
        self._watches = watches
        self.watched_from: list[str] = []
        self.idle = threading.Event()

    def list_all(self, kind: str, label_selector: str = "") -> tuple[list[kube.Obj], str]:
        items = self._listings.pop(0)
        return items, f"list-{len(self._listings)}"

    def watch(
        self, kind: str, label_selector: str, resource_version: str, seconds: int
    ) -> Iterator[kube.Obj]:
        self.watched_from.append(resource_version)
        if not self._watches:
            self.idle.set()
            threading.Event().wait(0.05)
            return
        script = self._watches.pop(0)
        if isinstance(script, kube.KubeError):
            raise script
        yield from script


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(informer, "RETRY_SECONDS", 0.01)


def follow(
    client: Scripted, objects: list[kube.Obj] | None = None, failing: str = ""
) -> list[tuple[str, str]]:
    """Run an informer until the script is played; the events it delivered (their objects into objects).

    failing: the name of an object the callback raises on (and that it does not count as delivered).
    """
    seen: list[tuple[str, str]] = []

    def on_event(kind: str, o: kube.Obj) -> None:
        if o["metadata"]["name"] == failing:
            raise RuntimeError("a bug")
        seen.append((kind, o["metadata"]["name"]))
        if objects is not None:
            objects.append(o)

    follower = informer.Informer(client, "Secret", on_event)  # type: ignore[arg-type]
    follower.start()
    try:
        assert follower.wait_synced(5)
        wait_until(client.idle.is_set, what="the script to be played")
    finally:
        follower.stop()
    return seen


def test_a_list_then_the_watch_from_its_version_and_each_event_after() -> None:
    client = Scripted(
        [[obj("a", "1")]],
        [[{"type": "ADDED", "object": obj("b", "2")}, {"type": "BOOKMARK", "object": obj("", "7")}]],
    )
    assert follow(client) == [("ADDED", "a"), ("ADDED", "b")]
    assert client.watched_from[:2] == ["list-0", "7"]


def test_an_expired_version_lists_again_and_reports_what_vanished() -> None:
    client = Scripted(
        [[obj("a", "1"), obj("b", "1")], [obj("b", "5")]],
        [kube.Gone("watch Secret: 410 Expired", 410)],
    )
    seen: list[kube.Obj] = []
    assert follow(client, seen) == [("ADDED", "a"), ("ADDED", "b"), ("DELETED", "a"), ("MODIFIED", "b")]
    assert seen[2]["metadata"]["labels"] == {"o": "a"}  # its owner can still be found


def test_a_broken_stream_watches_again_from_the_last_version_without_listing() -> None:
    client = Scripted(
        [[obj("a", "1")]],
        [[{"type": "MODIFIED", "object": obj("a", "3")}], kube.KubeError("watch Secret: the stream broke")],
    )
    assert follow(client) == [("ADDED", "a"), ("MODIFIED", "a")]
    assert client.watched_from[:3] == ["list-0", "3", "3"]


def test_a_callback_failing_on_one_object_does_not_hold_up_the_next() -> None:
    client = Scripted(
        [[obj("a", "1")]],
        [[{"type": "ADDED", "object": obj("bad", "2")}, {"type": "ADDED", "object": obj("after", "3")}]],
    )
    assert follow(client, failing="bad") == [("ADDED", "a"), ("ADDED", "after")]
    assert client.watched_from[:2] == ["list-0", "3"]


def test_a_callback_failing_during_the_list_still_completes_it() -> None:
    client = Scripted([[obj("bad", "1"), obj("b", "1")]], [])
    assert follow(client, failing="bad") == [("ADDED", "b")]
