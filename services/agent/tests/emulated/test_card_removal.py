"""The emulated card pulled from the reader under load: UNAVAILABLE, then the same agent serves again."""

from __future__ import annotations

import threading
import time

import grpc

from hsmproto.v1 import hsm_pb2


def load(stub, stop: threading.Event, codes: list[tuple[float, grpc.StatusCode]]) -> None:  # type: ignore[no-untyped-def]
    n = 0
    while not stop.is_set():
        n += 1
        try:
            stub.WriteSecret(
                hsm_pb2.WriteSecretRequest(
                    path=f"ns/load-{n % 3}", secret_data=hsm_pb2.SecretData(data={"k": b"%d" % n})
                ),
                timeout=30,
            )
            stub.ReadSecret(hsm_pb2.ReadSecretRequest(path=f"ns/load-{n % 3}"), timeout=30)
            codes.append((time.monotonic(), grpc.StatusCode.OK))
        except grpc.RpcError as error:
            codes.append((time.monotonic(), error.code()))
            time.sleep(0.05)


def test_a_removed_card_fails_unavailable_then_the_same_process_recovers(stub, card_stack, wait) -> None:
    stub.WriteSecret(
        hsm_pb2.WriteSecretRequest(path="ns/kept", secret_data=hsm_pb2.SecretData(data={"k": b"v"})),
        timeout=30,
    )
    agent_pid = card_stack.agent.pid
    stop = threading.Event()
    codes: list[tuple[float, grpc.StatusCode]] = []
    worker = threading.Thread(target=load, args=(stub, stop, codes), daemon=True)
    worker.start()
    try:
        wait(lambda: len(codes) >= 3, timeout=60)
        removed = time.monotonic()
        card_stack.card.remove()
        first_failure = wait(
            lambda: next((t for t, c in codes if t > removed and c == grpc.StatusCode.UNAVAILABLE), None),
            timeout=30,
        )
        print(f"first UNAVAILABLE {first_failure - removed:.2f} s after the removal")
        assert not stub.IsConnected(hsm_pb2.IsConnectedRequest(), timeout=5).connected
        card_stack.card.insert()
        back = time.monotonic()
        recovered = wait(
            lambda: next((t for t, c in codes if t > back and c == grpc.StatusCode.OK), None), timeout=60
        )
        print(f"first OK {recovered - back:.2f} s after the reinsertion")
    finally:
        stop.set()
        worker.join(timeout=60)
    assert dict(stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="ns/kept"), timeout=30).secret_data.data) == {
        "k": b"v"
    }
    assert card_stack.agent.pid == agent_pid
    assert card_stack.agent.poll() is None, "the agent recovered in-process"
    unexpected = {c for _, c in codes} - {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}
    assert not unexpected, unexpected
