"""WatchSecrets (snapshot, live events) and rescans that catch other tools' writes and collect leftovers."""

from __future__ import annotations

import queue
import threading

import grpc
import pytest

from hsm_agent.store import layout, secret_store
from hsmproto import channel
from hsmproto.v1 import hsm_pb2

KIND = hsm_pb2.SecretEvent


def watch(stub, prefix: str = "", snapshot: bool = True):  # type: ignore[no-untyped-def]
    """Start a watch; returns (call, queue of events) with a thread draining the stream into the queue."""
    call = stub.WatchSecrets(hsm_pb2.WatchSecretsRequest(prefix=prefix, include_snapshot=snapshot))
    events: queue.Queue[hsm_pb2.SecretEvent | None] = queue.Queue()

    def drain() -> None:
        try:
            for event in call:
                events.put(event)
        except Exception:  # noqa: S110 - the stream ends with CANCELLED when the test cancels it
            pass
        events.put(None)

    threading.Thread(target=drain, daemon=True).start()
    return call, events


def take(events: queue.Queue, count: int) -> list[tuple[int, str, int]]:  # type: ignore[type-arg]
    return [(e.kind, e.path, e.version) for e in (events.get(timeout=10) for _ in range(count))]


def write(stub, path: str, value: bytes) -> None:  # type: ignore[no-untyped-def]
    stub.WriteSecret(hsm_pb2.WriteSecretRequest(path=path, secret_data=hsm_pb2.SecretData(data={"k": value})))


def test_watch_starts_with_a_snapshot_then_streams_changes(stub) -> None:
    write(stub, "a/one", b"1")
    call, events = watch(stub, "a/")
    assert take(events, 2) == [(KIND.KIND_SNAPSHOT, "a/one", 1), (KIND.KIND_SNAPSHOT_END, "", 0)]
    write(stub, "b/other", b"x")
    write(stub, "a/one", b"2")
    stub.DeleteSecret(hsm_pb2.DeleteSecretRequest(path="a/one"))
    assert take(events, 2) == [(KIND.KIND_CHANGED, "a/one", 2), (KIND.KIND_DELETED, "a/one", 3)]
    call.cancel()


def test_watch_ends_when_the_agent_stops(stub, running) -> None:
    call, events = watch(stub)
    # The snapshot's end shows the server is streaming; stopping before that would test the client's retries.
    assert take(events, 1) == [(KIND.KIND_SNAPSHOT_END, "", 0)]
    running.stop()
    assert events.get(timeout=15) is None
    # OK, not CANCELLED: the agent ended the stream itself rather than letting the shutdown grace run out.
    assert call.code() == grpc.StatusCode.OK


def test_rescan_finds_a_secret_written_by_another_tool(stub, running, softhsm) -> None:
    _, events = watch(stub, snapshot=False)
    softhsm.tool("write", "ns/foreign", "5", "k=from-tool")
    assert running.store.rescan() == 1
    read = stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="ns/foreign"))
    assert (dict(read.secret_data.data), read.version) == ({"k": b"from-tool"}, 5)
    assert take(events, 1) == [(KIND.KIND_CHANGED, "ns/foreign", 5)]


def test_rescan_notices_a_head_destroyed_by_another_tool(stub, running, softhsm) -> None:
    write(stub, "ns/doomed", b"1")
    _, events = watch(stub, snapshot=False)
    generation = running.store.index.get("ns/doomed").generation
    softhsm.tool("destroy", layout.APPLICATION_RECORD, layout.record_label("ns/doomed", generation))
    running.store.rescan()
    assert take(events, 1) == [(KIND.KIND_DELETED, "ns/doomed", 1)]


def test_periodic_rescan_runs_without_being_asked(softhsm, start_agent, wait) -> None:
    service = start_agent(softhsm, rescan_interval=0.3)
    softhsm.tool("write", "ns/later", "1", "k=v")
    wait(lambda: service.store.index.get("ns/later") is not None)


def looks(service, result: str) -> float:  # type: ignore[no-untyped-def]
    value = service.metrics.registry.get_sample_value("hsm_agent_rescans_total", {"result": result})
    return value or 0.0


def test_a_periodic_look_at_an_unchanged_token_reads_no_object(
    softhsm, start_agent, wait, token_reads
) -> None:
    service = start_agent(softhsm, rescan_interval=0.2)
    for i in range(3):
        service.store.write(f"ns/s{i}", {"k": b"v"}, None)
    service.store.collect()
    wait(lambda: looks(service, "unchanged") >= 1)
    before = token_reads(service)
    wait(lambda: looks(service, "unchanged") >= 3)
    assert token_reads(service) == before


def test_a_periodic_look_finds_an_object_another_tool_removed(
    softhsm, start_agent, wait, monkeypatch
) -> None:
    monkeypatch.setattr(secret_store, "FULL_RESCAN_EVERY", 10**6)  # only the look itself can notice
    service = start_agent(softhsm, rescan_interval=0.2)
    service.store.write("ns/doomed", {"k": b"v"}, None)
    service.store.collect()
    wait(lambda: looks(service, "unchanged") >= 1)
    generation = service.store.index.get("ns/doomed").generation
    softhsm.tool("destroy", layout.APPLICATION_RECORD, layout.record_label("ns/doomed", generation))
    wait(lambda: service.store.index.get("ns/doomed") is None)


def test_leftovers_of_an_interrupted_write_are_collected(stub, running, softhsm) -> None:
    write(stub, "ns/kept", b"1")
    kept = layout.record_label("ns/kept", running.store.index.get("ns/kept").generation)
    softhsm.tool("create", layout.APPLICATION_CHUNK, "ns/kept@00000000deadbeef#0", b"half".hex())
    softhsm.tool("create", layout.APPLICATION_RECORD, "ns/kept@00000000deadbeef", b"\xa1".hex())
    running.store.rescan()
    assert [o["label"] for o in softhsm.tool("list")] == [kept]
    assert dict(stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="ns/kept")).secret_data.data) == {"k": b"1"}


def test_a_record_whose_chunk_vanished_falls_back_to_nothing_readable(softhsm, start_agent) -> None:
    service = start_agent(softhsm, max_object_size=1024)
    with grpc.insecure_channel(f"127.0.0.1:{service.port}") as chan:
        stub = channel.agent_stub(chan)
        write(stub, "ns/broken", b"x" * 3000)
        head = service.store.index.get("ns/broken")
        assert head.chunks == 3
        chunk = layout.chunk_labels(layout.record_label("ns/broken", head.generation), 3)[1]
        softhsm.tool("destroy", layout.APPLICATION_CHUNK, chunk)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="ns/broken"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
