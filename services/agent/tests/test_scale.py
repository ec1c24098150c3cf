"""10,000 secrets on one token: ListSecrets returns all of them, also after a restart."""

from __future__ import annotations

import time

import grpc
import pytest

from hsmproto import channel
from hsmproto.v1 import hsm_pb2

COUNT = 10_000


@pytest.mark.slow
def test_ten_thousand_secrets_are_all_listed_after_a_restart(softhsm, start_agent, wait) -> None:
    first = start_agent(softhsm)
    for i in range(COUNT):
        first.store.write(f"ns/s-{i:05d}", {"k": b"%d" % i}, None)
    first.stop()
    started = time.monotonic()
    second = start_agent(softhsm)
    load_seconds = time.monotonic() - started
    with grpc.insecure_channel(f"127.0.0.1:{second.port}", options=channel.channel_options()) as chan:
        listed = channel.agent_stub(chan).ListSecrets(hsm_pb2.ListSecretsRequest(prefix="ns/"), timeout=30)
    assert len(listed.paths) == COUNT
    assert len(set(listed.paths)) == COUNT
    assert second.store.read("ns/s-09999").data == {"k": b"9999"}
    print(f"index of {COUNT} secrets loaded in {load_seconds:.2f}s")
