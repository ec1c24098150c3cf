"""Wrong PIN: one login attempt, not ready, and another attempt only when the PIN file changes."""

from __future__ import annotations

import re
import subprocess
import time

from hsm_agent.store import secret_store


def test_wrong_pin_is_tried_once_until_the_file_changes(softhsm, start_agent, wait) -> None:
    softhsm.pin_file.write_text("0000\n")
    service = start_agent(softhsm, ready=False)
    wait(lambda: service.store.state is secret_store.State.WRONG_PIN)
    time.sleep(1.0)  # five reconnect periods: a retry would show in the count
    assert (service.store.login_attempts, service.store.ready) == (1, False)
    softhsm.pin_file.write_text("1111\n")
    wait(lambda: service.store.login_attempts == 2)
    softhsm.pin_file.write_text("1234\n")
    assert service.wait_ready(10)
    assert service.store.login_attempts == 3


def test_missing_pin_file_keeps_the_agent_not_ready(softhsm, start_agent, wait) -> None:
    softhsm.pin_file.unlink()
    service = start_agent(softhsm, ready=False)
    wait(lambda: service.store.state is secret_store.State.NO_PIN)
    softhsm.pin_file.write_text("1234")
    assert service.wait_ready(10)


def test_token_with_another_serial_is_refused(softhsm, start_agent, wait) -> None:
    service = start_agent(softhsm, ready=False, serial="not-this-one")
    wait(lambda: service.store.state is secret_store.State.REFUSED)
    assert service.store.login_attempts == 1


def _serial_of(softhsm, label: str) -> str:
    shown = subprocess.run(
        ["softhsm2-util", "--show-slots"],
        env=softhsm.env(),
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    for block in shown.split("\nSlot "):
        if re.search(rf"^\s*Label:\s*{label}\s*$", block, re.MULTILINE):
            return re.search(r"^\s*Serial number:\s*(\S+)", block, re.MULTILINE).group(1)
    raise AssertionError(f"no token {label}")


def test_without_a_label_the_serial_picks_the_token(softhsm, start_agent) -> None:
    softhsm.init("second")
    wanted = _serial_of(softhsm, "second")
    service = start_agent(softhsm, token_label=None, serial=wanted)
    assert service.store.info is not None
    assert (service.store.info.label.strip(), service.store.info.serial) == ("second", wanted)


def test_without_a_label_an_unknown_serial_is_unavailable(softhsm, start_agent, wait) -> None:
    service = start_agent(softhsm, ready=False, token_label=None, serial="0000000000000000")
    wait(lambda: "no token with serial" in (service.store.message or ""))
    assert not service.store.ready


def test_without_a_label_or_serial_the_one_token_present_is_served(softhsm, start_agent) -> None:
    service = start_agent(softhsm, token_label=None)
    assert service.store.info is not None
    assert service.store.info.label.strip() == softhsm.label


def test_without_a_label_or_serial_two_tokens_are_not_guessed_between(softhsm, start_agent, wait) -> None:
    softhsm.init("second")
    service = start_agent(softhsm, ready=False, token_label=None)
    wait(lambda: "2 initialised tokens present" in (service.store.message or ""))
    assert not service.store.ready
