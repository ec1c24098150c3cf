"""Which device's generator gives the random bytes, and what a caller hears when none can.

Simulated devices: SoftHSM2 always has a generator and the real path is tested in
tests/api/test_api_generate.py; here each device answers GenerateRandom as told.
"""

from __future__ import annotations

from typing import Any

import pytest

from hsm_manager.gateway import errors as agent_errors
from hsm_manager.mirroring import errors, groups, randomness


class _Device:
    def __init__(self, name: str, answer: bytes | type[agent_errors.AgentCallError]) -> None:
        self.name = name
        self.answer = answer
        self.asked = 0

    def generate_random(self, length: int) -> bytes:
        self.asked += 1
        if isinstance(self.answer, bytes):
            return self.answer[:length]
        raise self.answer(self.name, "the token has no random number generator")


def _group(*devices: _Device) -> groups.Group:
    members = tuple(groups.Member(d.name, _as_client(d)) for d in devices)
    return groups.Group("pair", "ns", members)


def _as_client(device: _Device) -> Any:
    return device


def test_a_device_without_a_generator_passes_the_turn() -> None:
    without, unreachable, able = (
        _Device("a", agent_errors.Unsupported),
        _Device("b", agent_errors.Unavailable),
        _Device("c", b"\x01\x02\x03"),
    )
    assert randomness.drawer(_group(without, unreachable, able))(3) == b"\x01\x02\x03"
    assert (without.asked, unreachable.asked, able.asked) == (1, 1, 1)


def test_no_generator_anywhere_is_said_and_nothing_is_made_up() -> None:
    group = _group(_Device("a", agent_errors.Unsupported), _Device("b", agent_errors.Unsupported))
    with pytest.raises(errors.NoRandomGenerator, match="no device of HSMDevice 'pair' has a random number"):
        randomness.drawer(group)(8)


def test_an_unreachable_device_is_the_error_when_no_other_could_answer() -> None:
    group = _group(_Device("a", agent_errors.Unsupported), _Device("b", agent_errors.Unavailable))
    with pytest.raises(errors.DeviceUnavailable, match=r"^b: "):
        randomness.drawer(group)(8)
