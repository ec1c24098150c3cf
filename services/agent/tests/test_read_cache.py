"""Reading a secret again is served from the values already read, never one the token no longer holds."""

from __future__ import annotations

import grpc
import pytest

from hsm_agent.store import layout, valuecache
from hsmproto.v1 import hsm_pb2, hsm_pb2_grpc


def write(stub: hsm_pb2_grpc.HSMAgentStub, path: str, data: dict[str, bytes]) -> None:
    stub.WriteSecret(hsm_pb2.WriteSecretRequest(path=path, secret_data=hsm_pb2.SecretData(data=data)))


def read(stub: hsm_pb2_grpc.HSMAgentStub, path: str) -> tuple[dict[str, bytes], int]:
    answer = stub.ReadSecret(hsm_pb2.ReadSecretRequest(path=path))
    return dict(answer.secret_data.data), answer.version


def test_a_second_read_asks_the_token_nothing(stub, running, token_reads) -> None:
    write(stub, "ns/db", {"user": b"app", "password": b"s3cret"})
    assert read(stub, "ns/db") == ({"user": b"app", "password": b"s3cret"}, 1)
    before = token_reads(running)
    assert read(stub, "ns/db") == ({"user": b"app", "password": b"s3cret"}, 1)
    assert token_reads(running) == before


def test_a_read_after_an_overwrite_answers_the_new_value(stub, running) -> None:
    write(stub, "ns/db", {"password": b"old"})
    assert read(stub, "ns/db") == ({"password": b"old"}, 1)
    write(stub, "ns/db", {"password": b"new"})
    assert read(stub, "ns/db") == ({"password": b"new"}, 2)


def test_a_read_after_a_delete_finds_nothing(stub, running) -> None:
    write(stub, "ns/db", {"password": b"old"})
    read(stub, "ns/db")
    stub.DeleteSecret(hsm_pb2.DeleteSecretRequest(path="ns/db"))
    with pytest.raises(grpc.RpcError) as caught:
        read(stub, "ns/db")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_removing_one_key_leaves_the_others_readable(stub, running) -> None:
    write(stub, "ns/db", {"user": b"app", "password": b"pw"})
    read(stub, "ns/db")
    stub.DeleteSecret(hsm_pb2.DeleteSecretRequest(path="ns/db", key="password"))
    assert read(stub, "ns/db") == ({"user": b"app"}, 2)


def test_after_another_tool_destroys_the_record_a_rescan_stops_its_reads(stub, running, softhsm) -> None:
    write(stub, "ns/doomed", {"k": b"v"})
    read(stub, "ns/doomed")
    generation = running.store.index.get("ns/doomed").generation
    softhsm.tool("destroy", layout.APPLICATION_RECORD, layout.record_label("ns/doomed", generation))
    running.store.rescan()
    with pytest.raises(grpc.RpcError) as caught:
        read(stub, "ns/doomed")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_record_another_tool_rewrote_under_the_same_label_is_read_anew_after_a_rescan(
    stub, running, softhsm
) -> None:
    write(stub, "ns/db", {"k": b"mine"})
    read(stub, "ns/db")
    generation = running.store.index.get("ns/db").generation
    softhsm.tool("destroy", layout.APPLICATION_RECORD, layout.record_label("ns/db", generation))
    softhsm.tool("write-as", "ns/db", "1", generation, "k=theirs")
    running.store.rescan()
    assert read(stub, "ns/db") == ({"k": b"theirs"}, 1)


def test_without_a_cache_every_read_asks_the_token(softhsm, start_agent, token_reads) -> None:
    service = start_agent(softhsm, read_cache_bytes=0)
    service.store.write("ns/db", {"k": b"v"}, None)
    service.store.read("ns/db")
    before = token_reads(service)
    assert service.store.read("ns/db").data == {"k": b"v"}
    assert token_reads(service) > before


def test_the_least_recently_read_values_go_first_when_the_memory_is_full() -> None:
    one = valuecache.ENTRY_OVERHEAD + len("ns/a") + len("k") + 10
    cache = valuecache.ValueCache(max_bytes=2 * one)
    cache.put("ns/a", "g1", {"k": b"a" * 10})
    cache.put("ns/b", "g1", {"k": b"b" * 10})
    assert cache.get("ns/a", "g1") == {"k": b"a" * 10}  # now the most recently read
    cache.put("ns/c", "g1", {"k": b"c" * 10})
    assert cache.get("ns/b", "g1") is None
    assert cache.get("ns/a", "g1") == {"k": b"a" * 10}
    assert cache.size == 2 * one


def test_a_copy_serves_only_its_own_generation_and_cannot_be_changed_through_a_read() -> None:
    cache = valuecache.ValueCache(max_bytes=4096)
    cache.put("ns/a", "g1", {"k": b"v"})
    assert cache.get("ns/a", "g2") is None
    served = cache.get("ns/a", "g1")
    assert served is not None
    served.clear()
    assert cache.get("ns/a", "g1") == {"k": b"v"}
    cache.put("ns/a", "g2", {"k": b"w"})
    assert (cache.get("ns/a", "g1"), cache.get("ns/a", "g2")) == (None, {"k": b"w"})


def test_a_value_larger_than_the_whole_memory_is_not_kept() -> None:
    cache = valuecache.ValueCache(max_bytes=1024)
    cache.put("ns/big", "g1", {"k": b"x" * 2048})
    assert (cache.get("ns/big", "g1"), cache.size) == (None, 0)
