"""Readers that keep copies: a write returns only once no reader can still serve the value it replaced."""

from __future__ import annotations

import queue
import shutil
import threading
import time
from collections.abc import Iterator

import grpc
import pytest

from hsm_agent import errors, readers
from hsmproto.v1 import hsm_pb2, hsm_pb2_grpc


def settle_in_thread(followed: readers.Readers) -> threading.Event:
    done = threading.Event()

    def run() -> None:
        followed.settle()
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done


def drain(reader: readers.Reader) -> list[readers.Grant | readers.Notice | None]:
    items = []
    while not reader.outbox.empty():
        items.append(reader.outbox.get_nowait())
    return items


def test_only_an_open_reader_follows() -> None:
    followed = readers.Readers()
    reader = followed.open()
    assert len(followed) == 1
    assert followed.follow(reader.name, "ns/db")
    assert not followed.follow("someone-else", "ns/db")
    followed.close(reader)
    assert len(followed) == 0
    assert not followed.follow(reader.name, "ns/db")


def test_a_change_is_told_once_to_each_follower_and_settles_when_acknowledged() -> None:
    followed = readers.Readers(ack_timeout=60)
    first, second, bystander = followed.open(), followed.open(), followed.open()
    for reader in (first, second, bystander):
        followed.renew(reader, 1)
        drain(reader)
    followed.follow(first.name, "ns/db")
    followed.follow(second.name, "ns/db")
    followed.follow(bystander.name, "ns/other")
    followed.changed("ns/db")
    followed.changed("ns/db")  # no longer followed: told to nobody
    assert drain(first) == [readers.Notice(1, ("ns/db",))]
    assert drain(second) == [readers.Notice(1, ("ns/db",))]
    assert drain(bystander) == []
    done = settle_in_thread(followed)
    followed.acknowledge(first, 1)
    assert not done.wait(0.3), "settled before every follower acknowledged"
    followed.acknowledge(second, 1)
    assert done.wait(10)
    assert not first.cut
    assert not second.cut


def test_a_change_under_a_followed_prefix_is_told_with_the_prefix() -> None:
    followed = readers.Readers()
    reader = followed.open()
    followed.follow(reader.name, "ns/", prefix=True)
    followed.follow(reader.name, "ns/db")
    followed.changed("other/db")
    assert drain(reader) == []
    followed.changed("ns/db")
    assert drain(reader) == [readers.Notice(1, ("ns/db",), ("ns/",))]
    followed.changed("ns/new")  # told once: the reader follows the prefix again when it lists again
    assert drain(reader) == []


def test_a_reader_that_does_not_acknowledge_is_cut_off_and_its_lease_waited_out() -> None:
    cut_off: list[None] = []
    followed = readers.Readers(lease=1.0, ack_timeout=0.2, cut_off=lambda: cut_off.append(None))
    silent = followed.open()
    followed.renew(silent, 1)
    followed.follow(silent.name, "ns/db")
    followed.changed("ns/db")
    followed.settle()
    assert time.monotonic() >= silent.expires
    assert silent.cut
    assert cut_off == [None]
    assert drain(silent)[-1] is None  # its stream is ended
    followed.renew(silent, 2)
    assert drain(silent) == []  # and it gets no more grants
    assert not followed.follow(silent.name, "ns/db")


def test_a_reader_whose_lease_ran_out_is_not_waited_for() -> None:
    followed = readers.Readers(ack_timeout=60)
    lapsed = followed.open()  # never renewed: it serves no copies
    followed.follow(lapsed.name, "ns/db")
    followed.changed("ns/db")
    done = settle_in_thread(followed)
    assert done.wait(10)
    assert not lapsed.cut


def test_a_change_to_a_path_a_gone_reader_followed_waits_out_its_lease() -> None:
    followed = readers.Readers(lease=1.0)
    gone = followed.open()
    followed.renew(gone, 1)
    followed.follow(gone.name, "ns/db")
    followed.follow(gone.name, "ns/kept")
    followed.close(gone)
    followed.settle()  # nothing it followed has changed yet
    followed.changed("ns/db")
    followed.settle()
    assert time.monotonic() >= gone.expires


def test_an_agent_follows_a_bounded_number_of_readers() -> None:
    followed = readers.Readers(limit=2)
    followed.open()
    kept = followed.open()
    with pytest.raises(errors.TooManyReaders):
        followed.open()
    followed.close(kept)
    followed.open()


class Follow:
    """A Follow stream driven by hand: requests in, events out."""

    def __init__(self, stub: hsm_pb2_grpc.HSMAgentStub) -> None:
        self.requests: queue.Queue[hsm_pb2.FollowRequest | None] = queue.Queue()
        self.call = stub.Follow(self._outgoing())
        self.name = next(self.call).reader

    def _outgoing(self) -> Iterator[hsm_pb2.FollowRequest]:
        while (request := self.requests.get()) is not None:
            yield request

    def send(self, renew: int = 0, ack: int = 0) -> None:
        self.requests.put(hsm_pb2.FollowRequest(renew=renew, ack=ack))

    def close(self) -> None:
        self.requests.put(None)
        self.call.cancel()


def write(stub: hsm_pb2_grpc.HSMAgentStub, path: str, value: bytes) -> int:
    data = hsm_pb2.SecretData(data={"k": value})
    return int(stub.WriteSecret(hsm_pb2.WriteSecretRequest(path=path, secret_data=data)).version)


def test_a_write_over_grpc_returns_once_the_reader_that_read_the_path_has_dropped_it(stub, running) -> None:
    running.servicer.readers.ack_timeout = 60
    write(stub, "ns/db", b"old")
    follow = Follow(stub)
    try:
        follow.send(renew=1)
        grant = next(follow.call)
        assert (grant.renewed, grant.lease_seconds) == (1, readers.LEASE_SECONDS)
        answer = stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="ns/db", reader=follow.name))
        assert answer.followed
        assert answer.secret_data.data["k"] == b"old"
        assert stub.GetChecksum(hsm_pb2.GetChecksumRequest(path="ns/db", reader=follow.name)).followed
        assert not stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="ns/db", reader="unknown")).followed
        written: queue.Queue[int] = queue.Queue()
        threading.Thread(target=lambda: written.put(write(stub, "ns/db", b"new")), daemon=True).start()
        notice = next(follow.call)
        assert list(notice.paths) == ["ns/db"]
        with pytest.raises(queue.Empty):
            written.get(timeout=0.3)
        follow.send(ack=notice.seq)
        assert written.get(timeout=10) == 2
        assert stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="ns/db")).secret_data.data["k"] == b"new"
    finally:
        follow.close()


def test_a_page_is_followed_by_its_prefix_and_a_whole_listing_is_not(stub, running) -> None:
    running.servicer.readers.ack_timeout = 60
    write(stub, "ns/a", b"1")
    follow = Follow(stub)
    try:
        follow.send(renew=1)
        next(follow.call)
        page = stub.ListSecrets(hsm_pb2.ListSecretsRequest(prefix="ns/", limit=10, reader=follow.name))
        assert page.followed
        assert [entry.path for entry in page.entries] == ["ns/a"]
        whole = stub.ListSecrets(hsm_pb2.ListSecretsRequest(prefix="other/", reader=follow.name))
        assert not whole.followed
        written: queue.Queue[int] = queue.Queue()
        threading.Thread(target=lambda: written.put(write(stub, "ns/b", b"2")), daemon=True).start()
        notice = next(follow.call)
        assert (list(notice.paths), list(notice.prefixes)) == ([], ["ns/"])
        follow.send(ack=notice.seq)
        assert written.get(timeout=10) == 1
        write(stub, "other/x", b"3")  # the whole listing was not followed: no notice, no wait
    finally:
        follow.close()


def test_losing_the_token_ends_the_streams_and_refuses_new_ones_until_it_is_back(
    stub, running, softhsm, wait
) -> None:
    follow = Follow(stub)
    follow.send(renew=1)
    next(follow.call)
    (token_dir,) = list(softhsm.tokendir.iterdir())
    shutil.move(token_dir, softhsm.root / "away")
    try:
        ended: list[object] = []

        def drain_stream() -> None:
            try:
                for _ in follow.call:
                    pass
            except grpc.RpcError as error:
                ended.append(error.code())
            else:
                ended.append("ended")

        threading.Thread(target=drain_stream, daemon=True).start()
        wait(lambda: ended, timeout=15)
        with pytest.raises(grpc.RpcError) as caught:
            next(stub.Follow(iter(())))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        follow.close()
        shutil.move(softhsm.root / "away", token_dir)
    wait(lambda: stub.IsConnected(hsm_pb2.IsConnectedRequest()).connected, timeout=15)
    again = Follow(stub)
    assert again.name
    again.close()


def test_follow_is_refused_past_the_agent_s_limit(stub, running) -> None:
    running.servicer.readers = readers.Readers(limit=0)
    with pytest.raises(grpc.RpcError) as caught:
        next(stub.Follow(iter(())))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
