"""The wire contract: the Go operator's ten RPCs and field numbers stay as they are."""

import pytest
from google.protobuf import descriptor

from hsmproto.v1 import hsm_pb2

SERVICE = hsm_pb2.DESCRIPTOR.services_by_name["HSMAgent"]

GO_RPCS = [
    "GetInfo", "ReadSecret", "WriteSecret", "ReadMetadata", "DeleteSecret",
    "ListSecrets", "GetChecksum", "IsConnected", "Health", "ChangePIN",
]  # fmt: skip

GO_FIELDS = {
    "HSMInfo": {"label": 1, "manufacturer": 2, "model": 3, "serial_number": 4, "firmware_version": 5},
    "SecretData": {"data": 1},
    "SecretMetadata": {
        "description": 1,
        "labels": 2,
        "format": 3,
        "data_type": 4,
        "created_at": 5,
        "source": 6,
    },
    "GetInfoResponse": {"hsm_info": 1},
    "ReadSecretRequest": {"path": 1},
    "ReadSecretResponse": {"secret_data": 1},
    "WriteSecretRequest": {"path": 1, "secret_data": 2, "metadata": 3},
    "ReadMetadataRequest": {"path": 1},
    "ReadMetadataResponse": {"metadata": 1},
    "DeleteSecretRequest": {"path": 1, "key": 2},
    "ListSecretsRequest": {"prefix": 1},
    "ListSecretsResponse": {"paths": 1},
    "GetChecksumRequest": {"path": 1},
    "GetChecksumResponse": {"checksum": 1},
    "IsConnectedResponse": {"connected": 1},
    "HealthResponse": {"status": 1, "message": 2},
    "ChangePINRequest": {"old_pin": 1, "new_pin": 2},
}


def test_package_is_hsm_v1() -> None:
    assert hsm_pb2.DESCRIPTOR.package == "hsm.v1"
    assert SERVICE.full_name == "hsm.v1.HSMAgent"


@pytest.mark.parametrize("rpc", GO_RPCS)
def test_go_rpcs_keep_their_request_and_response_names(rpc: str) -> None:
    method = SERVICE.methods_by_name[rpc]
    assert method.input_type.name == f"{rpc}Request"
    assert method.output_type.name == f"{rpc}Response"
    assert not method.server_streaming


@pytest.mark.parametrize(("message", "fields"), GO_FIELDS.items())
def test_go_fields_keep_their_numbers(message: str, fields: dict[str, int]) -> None:
    found = hsm_pb2.DESCRIPTOR.message_types_by_name[message].fields_by_name
    assert {name: found[name].number for name in fields} == fields


def test_watch_secrets_streams_change_events() -> None:
    method = SERVICE.methods_by_name["WatchSecrets"]
    assert method.server_streaming
    event = method.output_type.fields_by_name
    assert {"path", "version", "checksum", "deleted"} <= set(event)


def test_writes_and_deletes_carry_compare_and_set_fields() -> None:
    for message in ("WriteSecretRequest", "DeleteSecretRequest"):
        fields = hsm_pb2.DESCRIPTOR.message_types_by_name[message].fields_by_name
        assert fields["expected_version"].type == descriptor.FieldDescriptor.TYPE_INT64
        assert "has_expected_version" in fields
        assert "version" in fields


def test_list_entries_carry_version_checksum_and_deleted() -> None:
    entry = hsm_pb2.DESCRIPTOR.message_types_by_name["SecretEntry"].fields_by_name
    assert {"path", "version", "checksum", "deleted"} <= set(entry)
    listing = hsm_pb2.DESCRIPTOR.message_types_by_name["ListSecretsResponse"].fields_by_name
    assert listing["entries"].message_type.name == "SecretEntry"
