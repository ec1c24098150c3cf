"""Device removal under load: UNAVAILABLE within 5 s; put back, the same process serves again."""

from __future__ import annotations

import shutil
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
                    path=f"ns/load-{n % 5}", secret_data=hsm_pb2.SecretData(data={"k": b"%d" % n})
                ),
                timeout=5,
            )
            stub.ReadSecret(hsm_pb2.ReadSecretRequest(path=f"ns/load-{n % 5}"), timeout=5)
            codes.append((time.monotonic(), grpc.StatusCode.OK))
        except grpc.RpcError as error:
            codes.append((time.monotonic(), error.code()))
            time.sleep(0.01)


def test_removed_token_fails_unavailable_then_recovers_in_process(stub, running, softhsm, wait) -> None:
    stub.WriteSecret(
        hsm_pb2.WriteSecretRequest(path="ns/kept", secret_data=hsm_pb2.SecretData(data={"k": b"v"}))
    )
    (token_dir,) = list(softhsm.tokendir.iterdir())
    stop = threading.Event()
    codes: list[tuple[float, grpc.StatusCode]] = []
    worker = threading.Thread(target=load, args=(stub, stop, codes), daemon=True)
    worker.start()
    try:
        wait(lambda: len(codes) > 5)
        removed = time.monotonic()
        shutil.move(token_dir, softhsm.root / "away")
        first_failure = wait(
            lambda: next((t for t, c in codes if t > removed and c == grpc.StatusCode.UNAVAILABLE), None),
            timeout=5,
        )
        assert first_failure - removed < 5
        assert not stub.IsConnected(hsm_pb2.IsConnectedRequest()).connected
        shutil.move(softhsm.root / "away", token_dir)
        back = time.monotonic()
        wait(lambda: any(t > back and c == grpc.StatusCode.OK for t, c in codes), timeout=15)
    finally:
        stop.set()
        worker.join(timeout=10)
    assert dict(stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="ns/kept")).secret_data.data) == {"k": b"v"}
    assert running.metrics.recoveries._value.get() >= 1
    unexpected = {c for _, c in codes} - {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}
    assert not unexpected
