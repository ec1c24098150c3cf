"""An agent's failures as the API reports them: gRPC status → gateway error → operation failure → HTTP."""

from __future__ import annotations

from hsm_manager.api import errors
from hsm_manager.gateway import errors as agent_errors
from hsm_manager.mirroring import errors as mirror_errors

FULL = "no room: 119 of 120 objects used, 0 free"


def test_a_full_device_is_device_full_507_with_the_agents_message() -> None:
    failed = mirror_errors.from_agent(agent_errors.DeviceFull("hsm-b", FULL))
    error = errors.from_mirror(failed)
    assert isinstance(error, errors.DeviceFull)
    assert (error.status, error.message, error.details) == (507, f"hsm-b: {FULL}", {"device": "hsm-b"})


def test_an_agent_whose_certificate_is_refused_is_unavailable_503_saying_why() -> None:
    failed = mirror_errors.from_agent(agent_errors.Untrusted("hsm-b", "its TLS certificate has expired"))
    error = errors.from_mirror(failed)
    assert isinstance(error, errors.DeviceUnavailable)
    assert (error.status, error.message) == (503, "hsm-b: its TLS certificate has expired")


def test_every_operation_failure_has_an_api_code_of_the_same_name() -> None:
    for failure, cls in mirror_errors.BY_FAILURE.items():
        error = errors.from_mirror(cls("m"))
        assert error.code.value == failure.value
