"""Every RPC of HSMAgent against a real agent on a SoftHSM2 token: happy paths and status codes."""

from __future__ import annotations

import grpc
import pkcs11
import pytest

from hsm_agent import agent
from hsmproto.v1 import hsm_pb2

Stub = object


def write(stub, path: str, data: dict[str, bytes], **fields) -> hsm_pb2.WriteSecretResponse:  # type: ignore[no-untyped-def]
    return stub.WriteSecret(
        hsm_pb2.WriteSecretRequest(path=path, secret_data=hsm_pb2.SecretData(data=data), **fields), timeout=10
    )


def code_of(call) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code()


def test_written_secret_reads_back_byte_exact(stub) -> None:
    data = {"bin": bytes(range(256)) * 3, "empty": b"", "text": "päss\n".encode()}
    written = write(stub, "ns/db", data)
    read = stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="ns/db"), timeout=10)
    assert dict(read.secret_data.data) == data
    assert (read.version, read.checksum) == (written.version, written.checksum) == (1, written.checksum)


def test_one_mib_secret_round_trips_in_chunks(softhsm, start_agent, wait) -> None:
    service = start_agent(softhsm, max_object_size=4096)
    data = {"big": bytes(i % 251 for i in range(1024 * 1024 - 16))}
    service.store.write("ns/big", data, None)
    assert service.store.read("ns/big").data == data
    head = service.store.index.get("ns/big")
    assert head.chunks == -(-head.size // 4096) == 256


def test_overwrite_bumps_version_and_replaces_all_keys(stub) -> None:
    write(stub, "ns/app", {"a": b"1", "b": b"2"})
    second = write(stub, "ns/app", {"c": b"3"})
    read = stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="ns/app"), timeout=10)
    assert second.version == 2
    assert dict(read.secret_data.data) == {"c": b"3"}


def test_reading_an_absent_path_is_not_found(stub) -> None:
    assert code_of(lambda: stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="ns/none"), timeout=10)) == (
        grpc.StatusCode.NOT_FOUND
    )


def test_metadata_is_stored_and_carried_over_when_omitted(stub) -> None:
    meta = hsm_pb2.SecretMetadata(description="db creds", labels={"team": "a"}, format="json", source="api")
    write(stub, "ns/meta", {"k": b"v"}, metadata=meta)
    write(stub, "ns/meta", {"k": b"w"})
    got = stub.ReadMetadata(hsm_pb2.ReadMetadataRequest(path="ns/meta"), timeout=10)
    assert (got.metadata.description, dict(got.metadata.labels), got.metadata.format) == (
        "db creds",
        {"team": "a"},
        "json",
    )
    assert got.metadata.created_at
    assert (got.entry.version, list(got.entry.keys), got.entry.writer) == (2, ["k"], "dev-a")


def test_delete_writes_a_tombstone(stub) -> None:
    write(stub, "ns/gone", {"k": b"v"})
    deleted = stub.DeleteSecret(hsm_pb2.DeleteSecretRequest(path="ns/gone"), timeout=10)
    checksum = stub.GetChecksum(hsm_pb2.GetChecksumRequest(path="ns/gone"), timeout=10)
    assert (deleted.version, checksum.deleted, checksum.version, checksum.checksum) == (2, True, 2, "")
    assert code_of(lambda: stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="ns/gone"), timeout=10)) == (
        grpc.StatusCode.NOT_FOUND
    )


def test_writing_after_a_tombstone_continues_its_version(stub) -> None:
    write(stub, "ns/back", {"k": b"v"})
    stub.DeleteSecret(hsm_pb2.DeleteSecretRequest(path="ns/back"), timeout=10)
    assert write(stub, "ns/back", {"k": b"again"}).version == 3


def test_deleting_one_key_keeps_the_others(stub) -> None:
    write(stub, "ns/keys", {"a": b"1", "b": b"2"})
    stub.DeleteSecret(hsm_pb2.DeleteSecretRequest(path="ns/keys", key="a"), timeout=10)
    read = stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="ns/keys"), timeout=10)
    assert (dict(read.secret_data.data), read.version) == ({"b": b"2"}, 2)


def test_deleting_an_absent_key_is_not_found(stub) -> None:
    write(stub, "ns/keys", {"a": b"1"})
    request = hsm_pb2.DeleteSecretRequest(path="ns/keys", key="zz")
    assert code_of(lambda: stub.DeleteSecret(request, timeout=10)) == grpc.StatusCode.NOT_FOUND


def test_deleting_an_absent_path_is_not_found(stub) -> None:
    request = hsm_pb2.DeleteSecretRequest(path="ns/never")
    assert code_of(lambda: stub.DeleteSecret(request, timeout=10)) == grpc.StatusCode.NOT_FOUND


def test_mirrored_delete_of_an_unknown_path_leaves_a_tombstone(stub) -> None:
    stub.DeleteSecret(hsm_pb2.DeleteSecretRequest(path="ns/mirror", version=7, writer="dev-b"), timeout=10)
    listed = stub.ListSecrets(hsm_pb2.ListSecretsRequest(prefix="ns/", include_deleted=True), timeout=10)
    assert [(e.path, e.version, e.deleted, e.writer) for e in listed.entries] == [
        ("ns/mirror", 7, True, "dev-b")
    ]


def test_compare_and_set_write_succeeds_on_the_expected_version(stub) -> None:
    write(stub, "ns/cas", {"k": b"1"})
    assert write(stub, "ns/cas", {"k": b"2"}, expected_version=1, has_expected_version=True).version == 2


def test_compare_and_set_write_on_a_stale_version_is_aborted(stub) -> None:
    write(stub, "ns/cas", {"k": b"1"})
    write(stub, "ns/cas", {"k": b"2"})
    code = code_of(lambda: write(stub, "ns/cas", {"k": b"3"}, expected_version=1, has_expected_version=True))
    read = stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="ns/cas"), timeout=10)
    assert (code, dict(read.secret_data.data)) == (grpc.StatusCode.ABORTED, {"k": b"2"})


def test_create_only_write_expects_version_zero(stub) -> None:
    write(stub, "ns/once", {"k": b"1"}, expected_version=0, has_expected_version=True)
    code = code_of(lambda: write(stub, "ns/once", {"k": b"2"}, expected_version=0, has_expected_version=True))
    assert code == grpc.StatusCode.ABORTED


def test_compare_and_set_delete_on_a_stale_version_is_aborted(stub) -> None:
    write(stub, "ns/cas", {"k": b"1"})
    request = hsm_pb2.DeleteSecretRequest(path="ns/cas", expected_version=5, has_expected_version=True)
    assert code_of(lambda: stub.DeleteSecret(request, timeout=10)) == grpc.StatusCode.ABORTED


def test_explicit_version_is_written_with_its_writer(stub) -> None:
    write(stub, "ns/mirror", {"k": b"1"}, version=41, writer="dev-b")
    got = stub.ReadMetadata(hsm_pb2.ReadMetadataRequest(path="ns/mirror"), timeout=10)
    assert (got.entry.version, got.entry.writer) == (41, "dev-b")


def test_explicit_version_not_above_the_current_is_aborted(stub) -> None:
    write(stub, "ns/mirror", {"k": b"1"}, version=5)
    assert code_of(lambda: write(stub, "ns/mirror", {"k": b"2"}, version=5)) == grpc.StatusCode.ABORTED


def test_a_listing_pages_after_the_path_it_is_given(stub) -> None:
    for path in ("a/1", "a/2", "a/3", "a/4", "a/5", "b/1"):
        write(stub, path, {"k": b"v"})
    stub.DeleteSecret(hsm_pb2.DeleteSecretRequest(path="a/2"), timeout=10)

    def page(after: str, limit: int, include_deleted: bool = False) -> list[str]:
        request = hsm_pb2.ListSecretsRequest(
            prefix="a/", start_after=after, limit=limit, include_deleted=include_deleted
        )
        return [entry.path for entry in stub.ListSecrets(request, timeout=10).entries]

    assert page("", 2) == ["a/1", "a/3"]
    assert page("a/3", 2) == ["a/4", "a/5"]
    assert page("a/5", 2) == []
    assert page("", 2, include_deleted=True) == ["a/1", "a/2"]
    # A position between paths, or before the prefix, is a place to start like any other.
    assert page("a/25", 10) == ["a/3", "a/4", "a/5"]
    assert page("0", 1) == ["a/1"]
    assert page("", 0) == ["a/1", "a/3", "a/4", "a/5"]


def test_list_returns_live_paths_under_the_prefix(stub) -> None:
    for path in ("a/one", "a/two", "b/three"):
        write(stub, path, {"k": b"v"})
    stub.DeleteSecret(hsm_pb2.DeleteSecretRequest(path="a/two"), timeout=10)
    listed = stub.ListSecrets(hsm_pb2.ListSecretsRequest(prefix="a/"), timeout=10)
    assert list(listed.paths) == ["a/one"]
    assert [(e.path, e.version, e.checksum.startswith("sha256:")) for e in listed.entries] == [
        ("a/one", 1, True)
    ]


def test_checksum_matches_the_write(stub) -> None:
    written = write(stub, "ns/sum", {"k": b"v"})
    got = stub.GetChecksum(hsm_pb2.GetChecksumRequest(path="ns/sum"), timeout=10)
    assert (got.checksum, got.version, got.deleted) == (written.checksum, 1, False)


def test_checksum_of_an_absent_path_is_not_found(stub) -> None:
    request = hsm_pb2.GetChecksumRequest(path="ns/none")
    assert code_of(lambda: stub.GetChecksum(request, timeout=10)) == grpc.StatusCode.NOT_FOUND


def test_get_info_describes_the_token(stub, softhsm) -> None:
    write(stub, "ns/one", {"k": b"v"})
    info = stub.GetInfo(hsm_pb2.GetInfoRequest(), timeout=10)
    assert (info.hsm_info.label, info.hsm_info.manufacturer, info.device_name) == (
        "agent",
        "SoftHSM project",
        "dev-a",
    )
    assert (info.max_object_size, info.secret_count, bool(info.hsm_info.serial_number)) == (65536, 1, True)


def test_connected_agent_reports_healthy(stub) -> None:
    assert stub.IsConnected(hsm_pb2.IsConnectedRequest(), timeout=10).connected
    assert stub.Health(hsm_pb2.HealthRequest(), timeout=10).status == "healthy"


def test_change_pin_lets_the_new_pin_log_in(stub, running: agent.Agent, softhsm, start_agent) -> None:
    stub.ChangePIN(hsm_pb2.ChangePINRequest(old_pin="1234", new_pin="98765"), timeout=10)
    running.stop()
    softhsm.pin_file.write_text("98765")
    assert start_agent(softhsm).store.ready


def test_change_pin_with_a_wrong_old_pin_fails_the_precondition(stub) -> None:
    request = hsm_pb2.ChangePINRequest(old_pin="0000", new_pin="98765")
    assert code_of(lambda: stub.ChangePIN(request, timeout=10)) == grpc.StatusCode.FAILED_PRECONDITION


def test_generate_random_returns_fresh_bytes_of_the_length_asked(stub) -> None:
    first = stub.GenerateRandom(hsm_pb2.GenerateRandomRequest(length=32), timeout=10).random
    second = stub.GenerateRandom(hsm_pb2.GenerateRandomRequest(length=32), timeout=10).random
    assert len(first) == len(second) == 32
    assert first != second


@pytest.mark.parametrize("length", [0, -1, 65537])
def test_generate_random_refuses_a_length_out_of_range(stub, length: int) -> None:
    request = hsm_pb2.GenerateRandomRequest(length=length)
    assert code_of(lambda: stub.GenerateRandom(request, timeout=10)) == grpc.StatusCode.INVALID_ARGUMENT


class _WithoutRng:
    """The logged-in token as python-pkcs11 shows it, except that its flags lack CKF_RNG."""

    def __init__(self, token) -> None:  # type: ignore[no-untyped-def]
        self._token = token
        self.flags = token.flags & ~pkcs11.TokenFlag.RNG

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._token, name)


def test_a_token_without_a_generator_is_unimplemented_never_a_fallback(stub, running: agent.Agent) -> None:
    """Simulated: SoftHSM2 and OpenSC's tokens all announce a generator, so the token's flags are shown
    without CKF_RNG; the session the agent would have asked is the real one."""
    token = running.store._token
    token._token = _WithoutRng(token._token)
    with pytest.raises(grpc.RpcError) as caught:
        stub.GenerateRandom(hsm_pb2.GenerateRandomRequest(length=16), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert caught.value.details() == "the token has no random number generator"
