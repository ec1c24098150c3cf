"""16 client threads of mixed reads, writes, lists and deletes: no error, no torn read, index == rescan."""

from __future__ import annotations

import os
import random
import threading
import time

import grpc
import pytest

from hsmproto.v1 import hsm_pb2

THREADS = 16
SECONDS = float(os.environ.get("CONCURRENCY_SECONDS", "30"))
PATHS = [f"ns/c-{i}" for i in range(24)]


def payload(path: str, n: int) -> dict[str, bytes]:
    tag = f"{path}#{n}".encode()
    return {"a": tag, "b": tag * 40}


def client(stub, seed: int, until: float, failures: list[str], counts: list[int]) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    done = 0
    while time.monotonic() < until:
        path = rng.choice(PATHS)
        action = rng.random()
        try:
            if action < 0.4:
                read = stub.ReadSecret(hsm_pb2.ReadSecretRequest(path=path), timeout=10)
                data = dict(read.secret_data.data)
                if data != payload(path, int(data["a"].decode().rsplit("#", 1)[1])):
                    failures.append(f"torn read of {path}")
            elif action < 0.75:
                data = payload(path, rng.randrange(1_000_000))
                stub.WriteSecret(
                    hsm_pb2.WriteSecretRequest(path=path, secret_data=hsm_pb2.SecretData(data=data)),
                    timeout=10,
                )
            elif action < 0.9:
                stub.ListSecrets(hsm_pb2.ListSecretsRequest(prefix="ns/"), timeout=10)
                stub.GetChecksum(hsm_pb2.GetChecksumRequest(path=path), timeout=10)
            else:
                stub.DeleteSecret(hsm_pb2.DeleteSecretRequest(path=path), timeout=10)
            done += 1
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                failures.append(f"{error.code().name}: {error.details()}")
    counts.append(done)


@pytest.mark.slow
def test_sixteen_mixed_clients_cause_no_error_and_leave_a_consistent_index(stub, running) -> None:
    failures: list[str] = []
    counts: list[int] = []
    until = time.monotonic() + SECONDS
    threads = [
        threading.Thread(target=client, args=(stub, seed, until, failures, counts), daemon=True)
        for seed in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SECONDS + 60)
    assert failures == []
    assert len(counts) == THREADS
    assert sum(counts) > THREADS * 10
    before = running.store.index.entries(include_deleted=True)
    assert running.store.rescan() == 0
    assert running.store.index.entries(include_deleted=True) == before
    for head in before:
        if not head.deleted:
            assert running.store.read(head.path).head == head
