"""A wrong PIN on the emulated card: one try, the agent not ready, no lockout; the right PIN restores all."""

from __future__ import annotations

import time

from devcluster.schsm import flash
from hsmproto.v1 import hsm_pb2

from . import harness


def user_tries_left(card_stack) -> int:  # type: ignore[no-untyped-def]
    return int(card_stack.memory().pins[flash.USER_PIN].tries_left)


def test_a_wrong_pin_costs_one_try_and_the_right_one_restores_the_counter(card_stack, wait) -> None:
    card_stack.pin_file.write_text("000000\n")
    stub = card_stack.start_stub()
    wait(lambda: user_tries_left(card_stack) == 2, timeout=30)
    wait(lambda: "wrong-pin" in stub.Health(hsm_pb2.HealthRequest(), timeout=5).message, timeout=10)
    assert not stub.IsConnected(hsm_pb2.IsConnectedRequest(), timeout=5).connected
    time.sleep(2.5)  # five probe periods: a second try of the same PIN would show on the card's counter
    assert user_tries_left(card_stack) == 2
    card_stack.pin_file.write_text(harness.PIN + "\n")
    harness.wait_connected(stub)
    assert user_tries_left(card_stack) == 3
