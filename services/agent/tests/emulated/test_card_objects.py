"""Secrets on the emulated SmartCard-HSM through OpenSC: written, read, listed, overwritten, deleted."""

from __future__ import annotations

import grpc
import pytest

from devcluster.schsm import card, tlv
from hsmproto.v1 import hsm_pb2

DCOD_PREFIX = 0xC9
"""Files holding each data object's PKCS#15 description (label, application, flags, path)."""
READABLE_DATA_PREFIX = 0xCF


def write(stub, path: str, data: dict[str, bytes]) -> int:  # type: ignore[no-untyped-def]
    answer = stub.WriteSecret(
        hsm_pb2.WriteSecretRequest(path=path, secret_data=hsm_pb2.SecretData(data=data)), timeout=30
    )
    return int(answer.version)


def read(stub, path: str) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    return dict(stub.ReadSecret(hsm_pb2.ReadSecretRequest(path=path), timeout=30).secret_data.data)


def descriptions(card_stack) -> list[bytes]:  # type: ignore[no-untyped-def]
    return list(card_stack.data_files(DCOD_PREFIX).values())


def test_a_written_secret_reads_back_and_is_listed(stub) -> None:
    write(stub, "ns/db", {"username": b"admin", "password": b"s3cret"})
    assert read(stub, "ns/db") == {"username": b"admin", "password": b"s3cret"}
    assert list(stub.ListSecrets(hsm_pb2.ListSecretsRequest(prefix="ns/")).paths) == ["ns/db"]


def test_an_overwrite_serves_the_new_value_and_the_old_objects_leave_the_card(stub, card_stack, wait) -> None:
    write(stub, "ns/db", {"password": b"old"})
    write(stub, "ns/db", {"password": b"new"})
    assert read(stub, "ns/db") == {"password": b"new"}
    # OpenSC deletes an object's data file, then its description: both must go.
    wait(
        lambda: (
            (len(card_stack.data_files(card.PROTECTED_DATA_PREFIX)), len(descriptions(card_stack))) == (1, 1)
        ),
        timeout=15,
    )


def test_a_deleted_secret_is_gone_from_the_agent_and_the_card(stub, card_stack, wait) -> None:
    write(stub, "ns/db", {"password": b"s3cret"})
    write(stub, "ns/kept", {"password": b"other"})
    stub.DeleteSecret(hsm_pb2.DeleteSecretRequest(path="ns/db"), timeout=30)
    with pytest.raises(grpc.RpcError) as raised:
        read(stub, "ns/db")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert list(stub.ListSecrets(hsm_pb2.ListSecretsRequest(prefix="ns/")).paths) == ["ns/kept"]
    # The record's objects go; the tombstone ledger holds the deletion.
    wait(lambda: not any(b"ns/db@" in entry for entry in descriptions(card_stack)), timeout=15)
    assert read(stub, "ns/kept") == {"password": b"other"}


def test_a_secret_larger_than_an_object_is_chunked_and_reads_back(stub, card_stack) -> None:
    value = bytes(range(256)) * 40  # 10 KiB: three 4 KiB objects, each written in several APDUs
    write(stub, "ns/big", {"blob": value})
    assert read(stub, "ns/big") == {"blob": value}
    sizes = [len(data) for data in card_stack.data_files(card.PROTECTED_DATA_PREFIX).values()]
    assert len(sizes) >= 3
    assert max(sizes) <= 4096


def test_secrets_are_pin_protected_files_described_with_label_and_application(stub, card_stack) -> None:
    write(stub, "ns/db", {"password": b"s3cret"})
    assert card_stack.data_files(READABLE_DATA_PREFIX) == {}
    assert len(card_stack.data_files(card.PROTECTED_DATA_PREFIX)) == 1
    (entry,) = descriptions(card_stack)
    # DataObject ::= SEQUENCE { CommonObjectAttributes (label, flags, authId), CommonDataObjectAttributes
    # (application), ... }: the label and application the agent gave, and the private flag.
    ((_, body),) = tlv.decode(entry)
    common, data_attributes = (value for _, value in tlv.decode(body)[:2])
    fields = dict(tlv.decode(common))
    assert fields[0x0C].startswith(b"ns/db@")
    assert fields[0x03][1] & 0x80, "the private flag (bit 0 of CommonObjectFlags)"
    assert dict(tlv.decode(data_attributes))[0x0C] == b"hsm-secrets-operator/record"


def test_secrets_written_before_a_restart_are_served_after_it(card_stack) -> None:
    stub = card_stack.ready_stub()
    write(stub, "ns/db", {"password": b"s3cret"})
    write(stub, "ns/big", {"blob": bytes(9000)})
    card_stack.stop_agent()
    stub = card_stack.ready_stub()
    assert sorted(stub.ListSecrets(hsm_pb2.ListSecretsRequest(prefix="ns/")).paths) == ["ns/big", "ns/db"]
    assert read(stub, "ns/db") == {"password": b"s3cret"}
    assert read(stub, "ns/big") == {"blob": bytes(9000)}
