"""An agent's gRPC errors as the API reports them."""

from __future__ import annotations

from typing import Any

import grpc

from hsm_manager.api import agents, errors


class _Failed(grpc.RpcError, grpc.Call):
    """A failed call as grpcio raises it: an RpcError that is also a Call."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def initial_metadata(self) -> Any:
        return ()

    def trailing_metadata(self) -> Any:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float:
        return 0.0

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Any) -> bool:
        return False


def test_a_full_device_is_device_full_with_the_agents_message() -> None:
    failed = _Failed(grpc.StatusCode.RESOURCE_EXHAUSTED, "no room: 119 of 120 objects used, 0 free")
    error = agents.as_api_error(failed, agents.Member("hsm-b", ""))
    assert isinstance(error, errors.DeviceFull)
    assert error.status == 507
    assert error.message == "hsm-b: no room: 119 of 120 objects used, 0 free"
