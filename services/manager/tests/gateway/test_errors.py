"""gRPC status codes map to the one error tree in one place (gateway.errors.translate)."""

from __future__ import annotations

import datetime
from typing import Any

import grpc
import pytest

from hsm_manager.gateway import errors


class Failed(grpc.RpcError, grpc.Call):  # type: ignore[misc]  # grpc's classes are untyped
    """A failed call as grpc raises it: an RpcError that is also a Call with a status."""

    def __init__(self, code: grpc.StatusCode, details: str | None = "refused") -> None:
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str | None:
        return self._details

    def initial_metadata(self) -> Any:
        return ()

    def trailing_metadata(self) -> Any:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float | None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Any) -> bool:
        return False


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (grpc.StatusCode.NOT_FOUND, errors.NotFound),
        (grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidArgument),
        (grpc.StatusCode.OUT_OF_RANGE, errors.InvalidArgument),
        (grpc.StatusCode.ABORTED, errors.Conflict),
        (grpc.StatusCode.ALREADY_EXISTS, errors.Conflict),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, errors.DeviceFull),
        (grpc.StatusCode.UNAVAILABLE, errors.Unavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, errors.Unavailable),
        (grpc.StatusCode.FAILED_PRECONDITION, errors.Unavailable),
        (grpc.StatusCode.CANCELLED, errors.Unavailable),
        (grpc.StatusCode.DATA_LOSS, errors.Corrupt),
        (grpc.StatusCode.INTERNAL, errors.Internal),
        (grpc.StatusCode.UNKNOWN, errors.Internal),
    ],
)
def test_each_status_code_becomes_its_error_kind(
    code: grpc.StatusCode, kind: type[errors.AgentCallError]
) -> None:
    translated = errors.translate("a1", Failed(code))
    assert type(translated) is kind
    assert (translated.agent, translated.message) == ("a1", "refused")


def test_a_refused_precondition_of_a_pin_change_is_a_rejected_pin() -> None:
    translated = errors.translate("a1", Failed(grpc.StatusCode.FAILED_PRECONDITION), pin_call=True)
    assert isinstance(translated, errors.PinRejected)


def test_a_status_without_details_is_named_by_its_code() -> None:
    assert errors.translate("a1", Failed(grpc.StatusCode.UNAVAILABLE, None)).message == "UNAVAILABLE"


def test_an_error_without_a_status_means_the_agent_is_unavailable() -> None:
    assert isinstance(errors.translate("a1", grpc.RpcError()), errors.Unavailable)


def test_metrics_name_the_status_code() -> None:
    assert errors.code_name(Failed(grpc.StatusCode.ABORTED)) == "ABORTED"
    assert errors.code_name(grpc.RpcError()) == "UNKNOWN"


_VERIFY = "failed to connect to all addresses; last error: UNKNOWN: ipv4:10.0.0.7:9090: Tls handshake failed "
_VERIFY += "(TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:1000007d:SSL routines:OPENSSL_internal:"
_VERIFY += "CERTIFICATE_VERIFY_FAILED: {reason}: OK"


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        ("certificate has expired", "its TLS certificate has expired"),
        ("certificate is not yet valid", "its TLS certificate is not valid yet"),
        (
            "unable to get local issuer certificate",
            "its TLS certificate is not signed by the manager's CA (Secret hsm-manager-ca)",
        ),
        (
            "self signed certificate",
            "its TLS certificate is not signed by the manager's CA (Secret hsm-manager-ca)",
        ),
        ("certificate revoked", "its TLS certificate does not verify (certificate revoked)"),
    ],
)
def test_a_refused_agent_certificate_says_what_was_wrong_with_it(reason: str, said: str) -> None:
    translated = errors.translate("a1", Failed(grpc.StatusCode.UNAVAILABLE, _VERIFY.format(reason=reason)))
    assert isinstance(translated, errors.Untrusted)
    assert (translated.agent, translated.message, translated.summary) == ("a1", said, said)


def test_a_certificate_for_another_name_says_whose_it_should_be() -> None:
    details = "failed to connect to all addresses; last error: UNKNOWN: ipv4:10.0.0.7:9090: Custom "
    details += "verification check failed with error: UNAUTHENTICATED: Hostname Verification Check failed."
    translated = errors.translate("a1", Failed(grpc.StatusCode.UNAVAILABLE, details))
    assert isinstance(translated, errors.Untrusted)
    assert translated.message == "its TLS certificate is not issued for a1"


def test_a_refused_certificate_still_counts_as_an_unavailable_agent() -> None:
    details = _VERIFY.format(reason="certificate has expired")
    translated = errors.translate("a1", Failed(grpc.StatusCode.UNAVAILABLE, details))
    assert isinstance(translated, errors.Unavailable)


def test_an_agent_that_closed_the_connection_is_unavailable_not_untrusted() -> None:
    details = "failed to connect to all addresses; last error: UNAVAILABLE: ipv4:10.0.0.7:9090: Socket closed"
    translated = errors.translate("a1", Failed(grpc.StatusCode.UNAVAILABLE, details))
    assert type(translated) is errors.Unavailable
    assert translated.summary == "Unavailable"


@pytest.mark.parametrize(
    ("reason", "expired"),
    [("certificate has expired", True), ("unable to get local issuer certificate", False)],
)
def test_only_an_expired_certificates_refusal_is_marked_expired(reason: str, expired: bool) -> None:
    translated = errors.translate("a1", Failed(grpc.StatusCode.UNAVAILABLE, _VERIFY.format(reason=reason)))
    assert isinstance(translated, errors.Untrusted)
    assert translated.expired is expired


def test_the_date_an_expired_certificate_is_given_is_said_in_utc() -> None:
    berlin = datetime.timezone(datetime.timedelta(hours=1))
    said = errors.expired_at("a1", datetime.datetime(2026, 3, 1, 1, 30, tzinfo=berlin))
    assert (said.agent, said.message) == (
        "a1",
        "its TLS certificate has expired (on 2026-03-01 00:30:00 UTC)",
    )
    assert said.summary == said.message
