"""The API's exception hierarchy, its stable error codes and their HTTP statuses (mapped here, only here)."""

from __future__ import annotations

import enum
from typing import Any

from hsm_manager.mirroring import errors as mirror_errors


class Code(enum.StrEnum):
    """Stable machine-readable error codes; clients switch on these, never on messages."""

    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    MALFORMED_BODY = "MALFORMED_BODY"
    NOT_FOUND = "NOT_FOUND"
    ROUTE_NOT_FOUND = "ROUTE_NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    VERSION_CONFLICT = "VERSION_CONFLICT"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    DEVICE_UNAVAILABLE = "DEVICE_UNAVAILABLE"
    DEVICE_NOT_FOUND = "DEVICE_NOT_FOUND"
    AMBIGUOUS_DEVICE = "AMBIGUOUS_DEVICE"
    DEVICE_FULL = "DEVICE_FULL"
    PIN_REJECTED = "PIN_REJECTED"
    NO_RANDOM_GENERATOR = "NO_RANDOM_GENERATOR"
    PARTIAL_FAILURE = "PARTIAL_FAILURE"
    AUTH_BACKEND_UNAVAILABLE = "AUTH_BACKEND_UNAVAILABLE"
    KUBERNETES_UNAVAILABLE = "KUBERNETES_UNAVAILABLE"
    INTERNAL = "INTERNAL"


STATUS: dict[Code, int] = {
    Code.UNAUTHENTICATED: 401,
    Code.FORBIDDEN: 403,
    Code.INVALID_ARGUMENT: 400,
    Code.MALFORMED_BODY: 400,
    Code.NOT_FOUND: 404,
    Code.ROUTE_NOT_FOUND: 404,
    Code.METHOD_NOT_ALLOWED: 405,
    Code.ALREADY_EXISTS: 409,
    Code.VERSION_CONFLICT: 412,
    Code.PAYLOAD_TOO_LARGE: 413,
    Code.UNSUPPORTED_MEDIA_TYPE: 415,
    Code.DEVICE_UNAVAILABLE: 503,
    Code.DEVICE_NOT_FOUND: 404,
    Code.AMBIGUOUS_DEVICE: 400,
    Code.DEVICE_FULL: 507,
    Code.PIN_REJECTED: 422,
    # The device cannot do what the request needs, whoever asks and however often.
    Code.NO_RANDOM_GENERATOR: 501,
    Code.PARTIAL_FAILURE: 207,
    Code.AUTH_BACKEND_UNAVAILABLE: 503,
    Code.KUBERNETES_UNAVAILABLE: 503,
    Code.INTERNAL: 500,
}


class ApiError(Exception):
    """An error the API reports to its caller; the message must never hold a secret value or PIN."""

    code: Code = Code.INTERNAL

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    @property
    def status(self) -> int:
        """The HTTP status of this error."""
        return STATUS[self.code]


class Unauthenticated(ApiError):
    code = Code.UNAUTHENTICATED


class Forbidden(ApiError):
    code = Code.FORBIDDEN


class InvalidArgument(ApiError):
    """A bad name, key, query parameter or body field; details["field"] names it."""

    code = Code.INVALID_ARGUMENT


class MalformedBody(ApiError):
    code = Code.MALFORMED_BODY


class NotFound(ApiError):
    code = Code.NOT_FOUND


class AlreadyExists(ApiError):
    code = Code.ALREADY_EXISTS


class VersionConflict(ApiError):
    code = Code.VERSION_CONFLICT


class PayloadTooLarge(ApiError):
    code = Code.PAYLOAD_TOO_LARGE


class UnsupportedMediaType(ApiError):
    code = Code.UNSUPPORTED_MEDIA_TYPE


class DeviceUnavailable(ApiError):
    code = Code.DEVICE_UNAVAILABLE


class DeviceNotFound(ApiError):
    code = Code.DEVICE_NOT_FOUND


class AmbiguousDevice(ApiError):
    code = Code.AMBIGUOUS_DEVICE


class DeviceFull(ApiError):
    code = Code.DEVICE_FULL


class PinRejected(ApiError):
    code = Code.PIN_REJECTED


class NoRandomGenerator(ApiError):
    code = Code.NO_RANDOM_GENERATOR


class AuthBackendUnavailable(ApiError):
    code = Code.AUTH_BACKEND_UNAVAILABLE


class KubernetesUnavailable(ApiError):
    """A resource the answer is made of (an HSMPool) could not be read from the Kubernetes API."""

    code = Code.KUBERNETES_UNAVAILABLE


_OPERATION_ERRORS: dict[Code, type[ApiError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        VersionConflict,
        DeviceUnavailable,
        DeviceNotFound,
        AmbiguousDevice,
        DeviceFull,
        PinRejected,
        NoRandomGenerator,
    )
}


def from_mirror(error: mirror_errors.MirrorError) -> ApiError:
    """The API error of a failed mirroring operation (its failure names the code)."""
    return _OPERATION_ERRORS.get(Code(error.failure.value), ApiError)(error.message, error.details)
