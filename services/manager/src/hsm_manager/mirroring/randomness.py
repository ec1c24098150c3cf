"""Random bytes for generated values, from the generator of one device of the group.

The first device that answers gives them; a device without a generator, or one that does not answer, passes
the turn to the next. Nothing falls back to a software generator: when no device can give them, the
request fails and says why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from hsm_manager.decide import generated
from hsm_manager.gateway import errors as agent_errors

from . import errors, groups


def drawer(group: groups.Group) -> Callable[[int], bytes]:
    """``draw(n)``: n random bytes from a device of ``group``."""

    def draw(count: int) -> bytes:
        failures: list[agent_errors.AgentCallError] = []
        for member in group.members:
            try:
                return member.client.generate_random(count)
            except agent_errors.AgentCallError as error:
                failures.append(error)
        if not failures:
            raise errors.DeviceUnavailable(f"HSMDevice {group.device!r} has no agents")
        if all(isinstance(f, agent_errors.Unsupported) for f in failures):
            raise errors.NoRandomGenerator(
                f"no device of HSMDevice {group.device!r} has a random number generator, so no value can "
                "be generated on it",
                {"device": group.device},
            )
        raise errors.from_agent(next(f for f in failures if not isinstance(f, agent_errors.Unsupported)))

    return draw


def values(group: groups.Group, specs: Mapping[str, generated.Spec]) -> dict[str, bytes]:
    """A value for every key of ``specs``, made from a device's generator."""
    draw = drawer(group)
    return {key: generated.render(spec, draw) for key, spec in specs.items()}
