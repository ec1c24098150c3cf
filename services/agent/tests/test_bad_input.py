"""Malformed requests fail with a clear message before any PKCS#11 call, and the token stays unchanged."""

from __future__ import annotations

import grpc
import pytest

from hsm_common import constants
from hsmproto.v1 import hsm_pb2


def attempt(stub, method: str, request) -> grpc.RpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as caught:
        getattr(stub, method)(request, timeout=10)
    return caught.value


def write_request(
    path: str = "ns/ok", data: dict[str, bytes] | None = None, **fields
) -> hsm_pb2.WriteSecretRequest:  # type: ignore[no-untyped-def]
    return hsm_pb2.WriteSecretRequest(
        path=path, secret_data=hsm_pb2.SecretData(data=data if data is not None else {"k": b"v"}), **fields
    )


SECRET = b"s3cr3t-value-never-echoed"

BAD_REQUESTS = {
    "empty path": ("WriteSecret", write_request(path=""), "path must not be empty"),
    "upper-case path": ("WriteSecret", write_request(path="NS/db"), "invalid"),
    "doubled slash": ("WriteSecret", write_request(path="ns//db"), "empty segment"),
    "trailing slash": ("ReadSecret", hsm_pb2.ReadSecretRequest(path="ns/db/"), "empty segment"),
    "at sign in path": ("GetChecksum", hsm_pb2.GetChecksumRequest(path="ns/db@1"), "invalid"),
    "long path": ("WriteSecret", write_request(path="a/" + "b" * 253), "at most 254"),
    "slash in key": ("WriteSecret", write_request(data={"a/b": SECRET}), "key"),
    "dot-dot key": ("WriteSecret", write_request(data={"..": SECRET}), "key"),
    "empty data": ("WriteSecret", write_request(data={}), "at least one key"),
    "oversize data": (
        "WriteSecret",
        write_request(data={"k": SECRET + b"x" * constants.MAX_SECRET_BYTES}),
        "at most 1048576",
    ),
    "bad delete key": ("DeleteSecret", hsm_pb2.DeleteSecretRequest(path="ns/ok", key="a b"), "key"),
    "bad prefix": ("ListSecrets", hsm_pb2.ListSecretsRequest(prefix="NS*"), "prefix"),
    "negative page size": ("ListSecrets", hsm_pb2.ListSecretsRequest(prefix="ns/", limit=-1), "limit"),
    "negative version": ("WriteSecret", write_request(version=-1), "version"),
    "short new PIN": ("ChangePIN", hsm_pb2.ChangePINRequest(old_pin="1234", new_pin="1"), "new_pin"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_request_is_invalid_argument_without_touching_the_token(stub, running, case: str) -> None:
    method, request, message = BAD_REQUESTS[case]
    calls = running.metrics.pkcs11_total()
    error = attempt(stub, method, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.details()
    assert "s3cr3t" not in error.details()
    assert running.metrics.pkcs11_total() == calls


def test_wrong_expected_version_is_aborted_and_leaves_the_secret(stub, running) -> None:
    stub.WriteSecret(write_request(data={"k": b"first"}))
    creates = running.metrics.pkcs11_calls.labels("create", "ok")._value.get()
    error = attempt(
        stub,
        "WriteSecret",
        write_request(data={"k": b"second"}, expected_version=9, has_expected_version=True),
    )
    read = stub.ReadSecret(hsm_pb2.ReadSecretRequest(path="ns/ok"))
    assert (error.code(), "expected version 9" in error.details()) == (grpc.StatusCode.ABORTED, True)
    assert (dict(read.secret_data.data), read.version) == ({"k": b"first"}, 1)
    assert running.metrics.pkcs11_calls.labels("create", "ok")._value.get() == creates
