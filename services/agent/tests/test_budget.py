"""The object budget on SoftHSM2 set to OpenSC's numbers (120 objects of at most 4,096 bytes).

SoftHSM2 itself stores thousands of objects: the budget is what makes it refuse like a real token would.
"""

from __future__ import annotations

import grpc
import pytest

from hsm_agent import errors
from hsm_agent.store import budget, layout
from hsmproto import channel
from hsmproto.v1 import hsm_pb2

#: Superseded objects wait until a test collects them (store.collect()), so counts never depend on timing.
OPENSC = {
    "max_objects": budget.OPENSC_MAX_OBJECTS,
    "max_object_size": budget.OPENSC_MAX_OBJECT_SIZE,
    "collect_idle": 3600.0,
}


def two_keys(i: int, n: int = 0) -> dict[str, bytes]:
    return {"username": f"user-{i}".encode(), "password": f"password-{i}-{n}".encode() * 4}


def token_objects(softhsm) -> int:  # type: ignore[no-untyped-def]
    return len(softhsm.tool("list"))


def fill(store, count: int) -> None:  # type: ignore[no-untyped-def]
    for i in range(count):
        store.write(f"ns/s-{i:03d}", two_keys(i), None)


@pytest.fixture
def full(softhsm, start_agent):  # type: ignore[no-untyped-def]
    """An agent whose token holds as many two-key secrets as its OpenSC-sized budget allows (118)."""
    service = start_agent(softhsm, **OPENSC)
    fill(service.store, 118)
    return service


def test_defaults_follow_the_module() -> None:
    opensc = budget.for_module("/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so", None, None)
    softhsm = budget.for_module("/usr/lib/softhsm/libsofthsm2.so", None, None)
    assert (opensc.max_objects, opensc.max_object_size) == (120, 4096)
    assert (softhsm.max_objects, softhsm.max_object_size) == (100_000, 65536)
    assert budget.for_module("/usr/lib/softhsm/libsofthsm2.so", 50, 2048) == budget.Budget(50, 2048)


@pytest.mark.parametrize(
    ("used", "held", "create", "destroy", "fits"),
    [
        (117, 1, 1, 0, True),  # the last new secret: reserve and ledger slot stay free
        (118, 1, 1, 0, False),
        (118, 1, 1, 1, True),  # an overwrite at the limit
        (119, 0, 1, 1, True),
        (119, 0, 2, 1, False),  # a chunked overwrite has no room for its new generation
        (118, 0, 1, 2, True),  # a delete that rewrites the ledger
    ],
)
def test_budget_rule(used: int, held: int, create: int, destroy: int, fits: bool) -> None:
    def attempt() -> None:
        budget.check(budget.Budget(120, 4096), used, held, create, destroy, "writing 'ns/x'")

    if fits:
        attempt()
    else:
        with pytest.raises(errors.TokenFull, match=r"of 120 objects used, \d+ free"):
            attempt()


def test_a_two_key_secret_is_one_object(softhsm, start_agent) -> None:
    service = start_agent(softhsm, **OPENSC)
    service.store.write("ns/db", two_keys(1), None)
    assert token_objects(softhsm) == 1
    assert service.store.capacity().used_objects == 1


def test_118_two_key_secrets_fit_under_120_and_the_next_is_refused_untouched(full, softhsm) -> None:
    capacity = full.store.capacity()
    assert (capacity.used_objects, capacity.free_objects, capacity.own_objects) == (118, 0, 118)
    with pytest.raises(errors.TokenFull, match="118 of 120 objects used, 0 free") as refused:
        full.store.write("ns/one-more", two_keys(999), None)
    assert "password" not in str(refused.value)
    assert token_objects(softhsm) == 118
    assert full.store.index.get("ns/one-more") is None


def test_every_secret_can_be_overwritten_at_the_limit(full, softhsm) -> None:
    for i in range(118):
        full.store.write(f"ns/s-{i:03d}", two_keys(i, 1), None)
        # Superseded generations wait only while the budget has room for them.
        assert full.store.capacity().used_objects <= budget.OPENSC_MAX_OBJECTS
    assert token_objects(softhsm) == 118 + full.store.garbage_pending()
    full.store.collect()
    assert token_objects(softhsm) == 118
    assert all(full.store.read(f"ns/s-{i:03d}").data == two_keys(i, 1) for i in range(118))


def test_delete_then_create_at_the_limit(full, softhsm) -> None:
    full.store.delete("ns/s-000")
    full.store.collect()
    objects = softhsm.tool("list")
    assert len(objects) == 118  # 117 records and the ledger
    assert sum(o["app"] == layout.APPLICATION_LEDGER for o in objects) == 1
    full.store.write("ns/new", two_keys(5), None)
    with pytest.raises(errors.TokenFull):
        full.store.write("ns/newer", two_keys(6), None)
    for i in range(1, 11):
        full.store.delete(f"ns/s-{i:03d}")
    full.store.collect()
    assert token_objects(softhsm) == 109  # 108 records; one ledger holds every tombstone
    for i in range(10):
        full.store.write(f"ns/again-{i}", two_keys(i), None)
    assert token_objects(softhsm) == 119
    assert full.store.capacity().free_objects == 0


def test_tombstones_survive_a_restart_in_the_ledger(softhsm, start_agent) -> None:
    first = start_agent(softhsm, **OPENSC)
    first.store.write("ns/a", two_keys(1), None)
    first.store.delete("ns/a")
    first.stop()
    second = start_agent(softhsm, **OPENSC)
    head = second.store.index.get("ns/a")
    assert (head.deleted, head.version) == (True, 2)
    with pytest.raises(errors.Conflict):
        second.store.write("ns/a", two_keys(1), None, version=2)


def test_expired_tombstones_leave_the_ledger(softhsm, start_agent) -> None:
    service = start_agent(softhsm, tombstone_retention=0.0, **OPENSC)
    service.store.write("ns/a", two_keys(1), None)
    service.store.delete("ns/a")
    service.store.collect()
    assert token_objects(softhsm) == 1
    service.store.rescan()  # compacts the ledger to nothing: the old one goes to the collector
    service.store.collect()
    assert token_objects(softhsm) == 0
    assert service.store.index.get("ns/a") is None


def test_objects_of_other_tools_count(softhsm, start_agent) -> None:
    service = start_agent(softhsm, max_objects=10, max_object_size=4096, collect_idle=3600.0)
    for i in range(5):
        softhsm.tool("create", "other-tool", f"cert-{i}", b"x".hex())
    service.store.rescan()
    capacity = service.store.capacity()
    assert (capacity.used_objects, capacity.own_objects, capacity.free_objects) == (5, 0, 3)
    fill(service.store, 3)
    with pytest.raises(errors.TokenFull, match="8 of 10 objects used"):
        service.store.write("ns/x", two_keys(9), None)
    assert token_objects(softhsm) == 8


def test_a_secret_over_the_object_size_is_chunked_and_counted(softhsm, start_agent) -> None:
    service = start_agent(softhsm, **OPENSC)
    service.store.write("ns/tls", {"tls.crt": b"c" * 5000, "tls.key": b"k" * 3000}, None)
    head = service.store.index.get("ns/tls")
    assert head.chunks == 2
    assert token_objects(softhsm) == 3
    assert service.store.capacity().own_bytes > 8000


def test_getinfo_and_metrics_show_capacity(softhsm, start_agent) -> None:
    service = start_agent(softhsm, **OPENSC)
    fill(service.store, 3)
    with grpc.insecure_channel(f"127.0.0.1:{service.port}") as chan:
        info = channel.agent_stub(chan).GetInfo(hsm_pb2.GetInfoRequest())
    capacity = info.capacity
    assert (capacity.max_objects, capacity.used_objects, capacity.free_objects) == (120, 3, 115)
    assert (capacity.own_objects, capacity.HasField("free_memory")) == (3, False)  # SoftHSM2 does not say
    assert info.max_object_size == 4096
    text = service.metrics.registry.get_sample_value("hsm_agent_objects_used")
    assert text == 3.0


def test_write_over_budget_answers_resource_exhausted(softhsm, start_agent) -> None:
    service = start_agent(softhsm, max_objects=3, max_object_size=4096)
    with grpc.insecure_channel(f"127.0.0.1:{service.port}") as chan:
        stub = channel.agent_stub(chan)
        request = hsm_pb2.WriteSecretRequest(path="ns/a", secret_data=hsm_pb2.SecretData(data={"k": b"v"}))
        stub.WriteSecret(request)
        with pytest.raises(grpc.RpcError) as refused:
            stub.WriteSecret(hsm_pb2.WriteSecretRequest(path="ns/b", secret_data=request.secret_data))
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "1 of 3 objects used, 0 free" in refused.value.details()
