"""The object budget on the emulated card, at OpenSC's numbers.

OpenSC's PKCS#11 layer shows at most 128 objects per token; the agent's default budget for OpenSC modules
(120) refuses a write past it before touching the card, and keeps every secret already there. The card's
flash (76 KiB on a 4K device) can fill first: the budget counts objects, and OpenSC reports no free memory.
"""

from __future__ import annotations

import grpc
import pytest

from hsmproto.v1 import hsm_pb2

from . import harness

DCOD_PREFIX = 0xC9
#: Two-key secrets the default budget of 120 objects takes: one object each, beside OpenSC's profile object
#: (CKP_PUBLIC_CERTIFICATES_TOKEN, on every token it shows), one object kept free for an overwrite and one
#: for the tombstone ledger.
FITS = 117


def two_keys(i: int) -> dict[str, bytes]:
    return {"username": f"user-{i}".encode(), "password": f"password-{i}".encode() * 4}


def write(stub, path: str, data: dict[str, bytes]) -> None:  # type: ignore[no-untyped-def]
    stub.WriteSecret(
        hsm_pb2.WriteSecretRequest(path=path, secret_data=hsm_pb2.SecretData(data=data)), timeout=30
    )


def test_a_write_past_the_budget_is_refused_and_every_secret_is_kept(stub, card_stack) -> None:
    for i in range(FITS):
        write(stub, f"ns/s-{i:03d}", two_keys(i))
    on_card = set(card_stack.data_files(DCOD_PREFIX))
    with pytest.raises(grpc.RpcError) as raised:
        write(stub, "ns/one-more", two_keys(FITS))
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "budget" in raised.value.details()
    assert "118 of 120 objects used" in raised.value.details()
    assert set(card_stack.data_files(DCOD_PREFIX)) == on_card, "the refused write touched the card"
    assert len(on_card) == FITS
    assert stub.GetInfo(hsm_pb2.GetInfoRequest(), timeout=30).capacity.used_objects == FITS + 1
    assert len(stub.ListSecrets(hsm_pb2.ListSecretsRequest(prefix="ns/")).paths) == FITS
    for i in range(FITS):
        read = stub.ReadSecret(hsm_pb2.ReadSecretRequest(path=f"ns/s-{i:03d}"), timeout=30)
        assert dict(read.secret_data.data) == two_keys(i)


def fill_until_refused(stub, size: int) -> tuple[int, grpc.RpcError]:  # type: ignore[no-untyped-def]
    """Write secrets of ``size`` bytes until one fails: how many were written, and the failure."""
    for written in range(1000):
        try:
            write(stub, f"ns/s-{written}", {"k": bytes([written % 256]) * size})
        except grpc.RpcError as error:
            return written, error
    raise AssertionError("the card never filled up")


def test_a_write_past_the_cards_flash_fails_and_every_secret_is_kept(card_stack, wait) -> None:
    card_stack.new_card("--capacity=16384")
    stub = card_stack.ready_stub()
    kept, refused = fill_until_refused(stub, 3000)
    # The card answers 6A84 (not enough memory). When that is an object's first APDU, OpenSC says
    # CKR_DEVICE_MEMORY (RESOURCE_EXHAUSTED); after some of its APDUs went through, OpenSC 0.23 turns it
    # into "EF offset too large" and CKR_GENERAL_ERROR, which the agent cannot tell from a failing device
    # (UNAVAILABLE, and it reconnects). The budget counts objects, and OpenSC reports no free memory.
    assert refused.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert kept >= 3
    harness.wait_connected(stub)
    for i in range(kept):
        read = stub.ReadSecret(hsm_pb2.ReadSecretRequest(path=f"ns/s-{i}"), timeout=30)
        assert dict(read.secret_data.data) == {"k": bytes([i]) * 3000}
    stub.DeleteSecret(hsm_pb2.DeleteSecretRequest(path="ns/s-0"), timeout=30)
    # The deleted secret's flash is free once the collector destroyed its objects.
    wait(lambda: not any(b"ns/s-0@" in d for d in card_stack.data_files(DCOD_PREFIX).values()), timeout=15)
    write(stub, "ns/again", {"k": b"x" * 3000})
