"""SIGKILL during an overwrite on the emulated card: of the agent (and its pcscd, as a pod's end), or of
the card itself (pulled mid-command; its flash keeps each command whole or not at all).

The kill lands after the overwrite put some of its objects on the card and before it was acknowledged;
afterwards the secret reads as the old value or the new one, whole, never a mix.
"""

from __future__ import annotations

import threading

import grpc

from hsmproto.v1 import hsm_pb2

from . import harness

#: Seconds per command: the emulator answers in microseconds, so an overwrite would end before a kill lands.
LATENCY = 0.01
#: Objects on the card (data files and their descriptions) the overwrite has written when each kill lands.
KILL_AFTER = (1, 3, 5, 7)


def payload(n: int) -> dict[str, bytes]:
    """Version n: a record and three chunks, every byte tagged with n."""
    tag = f"v{n}|".encode()
    return {"small": tag, "large": tag * (9000 // len(tag))}


def overwrite(stub, version: int, outcome: list[grpc.StatusCode]) -> None:  # type: ignore[no-untyped-def]
    request = hsm_pb2.WriteSecretRequest(path="ns/db", secret_data=hsm_pb2.SecretData(data=payload(version)))
    try:
        stub.WriteSecret(request, timeout=30)
        outcome.append(grpc.StatusCode.OK)
    except grpc.RpcError as error:
        outcome.append(error.code())


def test_sigkill_during_an_overwrite_leaves_the_old_or_the_new_value(card_stack, wait) -> None:
    card_stack.restart_card(f"--latency={LATENCY}")
    stub = card_stack.ready_stub()
    stub.WriteSecret(
        hsm_pb2.WriteSecretRequest(path="ns/db", secret_data=hsm_pb2.SecretData(data=payload(0)))
    )
    served, mid_write = 0, 0
    for n, files in enumerate(KILL_AFTER, start=1):
        before = set(card_stack.memory().files)
        outcome: list[grpc.StatusCode] = []

        writer = threading.Thread(target=overwrite, args=(stub, n, outcome), daemon=True)
        writer.start()
        wait(lambda: outcome or len(set(card_stack.memory().files) - before) >= files, timeout=30)  # noqa: B023
        card_stack.kill_agent()
        writer.join(timeout=30)
        killed_mid_write = outcome != [grpc.StatusCode.OK]
        mid_write += killed_mid_write
        stub = card_stack.ready_stub()
        data = dict(stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="ns/db"), timeout=30).secret_data.data)
        assert data in (payload(served), payload(n)), f"kill {n}: neither v{served} nor v{n}"
        if killed_mid_write and data == payload(n):
            served = n
        elif not killed_mid_write:
            assert data == payload(n), f"kill {n}: an acknowledged write was lost"
            served = n
    assert mid_write >= 2, "the kills landed after the overwrites, not during them"
    files = card_stack.memory().files
    print(
        "data files", sum(f >> 8 == 0xCD for f in files), "descriptions", sum(f >> 8 == 0xC9 for f in files)
    )


def test_a_card_pulled_during_an_overwrite_keeps_the_old_or_the_new_value(card_stack, wait) -> None:
    card_stack.restart_card(f"--latency={LATENCY}")
    stub = card_stack.ready_stub()
    stub.WriteSecret(
        hsm_pb2.WriteSecretRequest(path="ns/db", secret_data=hsm_pb2.SecretData(data=payload(0))), timeout=30
    )
    agent_pid = card_stack.agent.pid
    before = set(card_stack.memory().files)
    outcome: list[grpc.StatusCode] = []
    writer = threading.Thread(target=overwrite, args=(stub, 1, outcome), daemon=True)
    writer.start()
    wait(lambda: len(set(card_stack.memory().files) - before) >= 3, timeout=30)
    card_stack.restart_card(f"--latency={LATENCY}", kill=True)
    writer.join(timeout=60)
    assert outcome != [grpc.StatusCode.OK], "the overwrite ended before the card was pulled"
    harness.wait_connected(stub)
    data = dict(stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="ns/db"), timeout=30).secret_data.data)
    assert data in (payload(0), payload(1))
    assert card_stack.agent.pid == agent_pid
    assert card_stack.agent.poll() is None, "the agent recovered in-process"
