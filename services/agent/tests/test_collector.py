"""Superseded generations are collected off the write path: in the background, or when room is needed."""

from __future__ import annotations

import logging
from typing import Any

import grpc
import pytest

from hsm_agent import errors, metrics
from hsm_agent.store import collector, layout
from hsmproto import channel
from hsmproto.v1 import hsm_pb2

#: Background collection held off for the whole test: superseded objects wait until collected by hand.
HELD = {"collect_idle": 3600.0}


def records(softhsm, path: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Labels of path's record objects on the token, as another process sees them."""
    stem = layout.record_label(path, "0" * layout.GENERATION_HEX).split("@")[0]
    return [
        o["label"]
        for o in softhsm.tool("list")
        if o["app"] == layout.APPLICATION_RECORD and o["label"].split("@")[0] == stem
    ]


def collected(service, result: str = "ok") -> float:  # type: ignore[no-untyped-def]
    value = service.metrics.registry.get_sample_value("hsm_agent_garbage_collected_total", {"result": result})
    return value or 0.0


def test_an_overwrite_returns_before_the_old_generation_is_destroyed(softhsm, start_agent) -> None:
    service = start_agent(softhsm, **HELD)
    service.store.write("ns/a", {"k": b"1"}, None)
    service.store.write("ns/a", {"k": b"2"}, None)
    assert len(records(softhsm, "ns/a")) == 2
    assert service.store.garbage_pending() == 1
    assert service.store.collect() == 1
    current = layout.record_label("ns/a", service.store.index.get("ns/a").generation)
    assert records(softhsm, "ns/a") == [current]
    assert collected(service) == 1


def test_the_background_collector_destroys_superseded_objects_once_writes_pause(
    softhsm, start_agent, wait
) -> None:
    service = start_agent(softhsm, collect_idle=0.05)
    for n in range(3):
        service.store.write("ns/a", {"k": b"%d" % n}, None)
    service.store.delete("ns/b", version=1)  # a ledger rewrite supersedes nothing yet
    service.store.delete("ns/c", version=1)  # this one supersedes the first ledger
    wait(lambda: service.store.garbage_pending() == 0)
    assert len(records(softhsm, "ns/a")) == 1
    assert sum(o["app"] == layout.APPLICATION_LEDGER for o in softhsm.tool("list")) == 1
    assert collected(service) == 3
    assert service.metrics.registry.get_sample_value("hsm_agent_garbage_pending") == 0


def test_reads_lists_and_checksums_never_serve_a_superseded_generation(softhsm, start_agent) -> None:
    service = start_agent(softhsm, **HELD)
    with grpc.insecure_channel(f"127.0.0.1:{service.port}") as chan:
        stub = channel.agent_stub(chan)
        for n in (1, 2):
            data = hsm_pb2.SecretData(data={"k": b"%d" % n})
            stub.WriteSecret(hsm_pb2.WriteSecretRequest(path="ns/a", secret_data=data))
        assert service.store.garbage_pending() == 1
        read = stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="ns/a"))
        listed = stub.ListSecrets(hsm_pb2.ListSecretsRequest(prefix="ns/")).entries
        checksum = stub.GetChecksum(hsm_pb2.GetChecksumRequest(path="ns/a"))
    assert (dict(read.secret_data.data), read.version) == ({"k": b"2"}, 2)
    assert [(e.path, e.version) for e in listed] == [("ns/a", 2)]
    assert (checksum.version, checksum.checksum) == (2, read.checksum)


def test_a_write_that_needs_the_room_of_garbage_collects_it_first(softhsm, start_agent) -> None:
    # Four objects: one secret, the ledger's held slot, the reserve, and one more secret.
    service = start_agent(softhsm, max_objects=4, max_object_size=4096, **HELD)
    service.store.write("ns/a", {"k": b"1"}, None)
    service.store.write("ns/a", {"k": b"2"}, None)
    capacity = service.store.capacity()
    assert (capacity.used_objects, capacity.free_objects) == (2, 1)  # the garbage counts, but is free
    service.store.write("ns/b", {"k": b"1"}, None)
    assert service.store.garbage_pending() == 0
    assert len(softhsm.tool("list")) == 2
    with pytest.raises(errors.TokenFull, match="2 of 4 objects used, 0 free"):
        service.store.write("ns/c", {"k": b"1"}, None)


def test_overwrites_at_the_budget_never_pass_it(softhsm, start_agent) -> None:
    service = start_agent(softhsm, max_objects=3, max_object_size=4096, **HELD)
    for n in range(6):
        service.store.write("ns/a", {"k": b"%d" % n}, None)
        assert service.store.capacity().used_objects <= 3
    assert len(softhsm.tool("list")) <= 3
    assert collected(service) >= 3  # collected synchronously: the background collector is held off


def test_a_write_load_that_never_pauses_keeps_the_backlog(softhsm, start_agent) -> None:
    service = start_agent(softhsm, collect_backlog=2, **HELD)
    for n in range(6):
        service.store.write("ns/a", {"k": b"%d" % n}, None)
        assert service.store.garbage_pending() <= 2
    assert len(records(softhsm, "ns/a")) == 3


def test_a_rescan_collects_pending_garbage_and_forgets_it(softhsm, start_agent) -> None:
    service = start_agent(softhsm, **HELD)
    service.store.write("ns/a", {"k": b"1"}, None)
    service.store.write("ns/a", {"k": b"2"}, None)
    service.store.rescan()
    assert service.store.garbage_pending() == 0
    assert len(records(softhsm, "ns/a")) == 1
    assert service.store.read("ns/a").data == {"k": b"2"}


def test_a_failed_background_destroy_is_logged_counted_and_left_for_the_next_scan(
    caplog: pytest.LogCaptureFixture,
) -> None:
    meters = metrics.Metrics()

    def refuse(handle: Any) -> None:
        raise errors.AgentError("PKCS#11 call failed: FunctionFailed")

    garbage = collector.Collector(refuse, lambda: None, meters, idle=0.0, retry=0.0)
    garbage.add(["an object"])
    with caplog.at_level(logging.WARNING, logger=collector.__name__):
        assert garbage.collect_one()
    assert garbage.pending == 0
    assert meters.registry.get_sample_value("hsm_agent_garbage_collected_total", {"result": "failed"}) == 1
    assert "left for the next scan" in caplog.text


def test_a_lost_token_during_a_destroy_keeps_the_object_pending_for_the_store_to_clear() -> None:
    def gone(handle: Any) -> None:
        raise errors.DeviceUnavailable("the token is not answering (DeviceRemoved)")

    garbage = collector.Collector(gone, lambda: None, metrics.Metrics(), idle=0.0, retry=0.0)
    garbage.add(["an object"])
    with pytest.raises(errors.DeviceUnavailable):
        garbage.collect_one()
    assert garbage.pending == 1
