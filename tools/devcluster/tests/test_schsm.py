"""The emulated SmartCard-HSM's commands, one APDU at a time, and its flash file."""

from __future__ import annotations

import pathlib
import signal
import subprocess
import sys
import time

import pytest

from devcluster.schsm import apdu, card, flash, provisioning, tlv

PIN = b"648219"
SO_PIN = "3537363231383830"


def command(cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None) -> bytes:
    """A short APDU, or an extended one when the data does not fit in 255 bytes."""
    head = bytes([cla, ins, p1, p2])
    if len(data) > 255:
        return head + b"\x00" + len(data).to_bytes(2, "big") + data + (b"\x00\x00" if le is not None else b"")
    body = (bytes([len(data)]) + data) if data else b""
    return head + body + (bytes([le % 256]) if le is not None else b"")


def sw(answer: bytes) -> int:
    return int.from_bytes(answer[-2:], "big")


@pytest.fixture
def store(tmp_path: pathlib.Path) -> flash.Flash:
    return flash.Flash(tmp_path / "card.json")


@pytest.fixture
def hsm(store: flash.Flash) -> card.SmartCardHsm:
    """An initialised card with the PIN, its flash in a file, just powered on."""
    memory = provisioning.new_device("EMU0001", capacity=8192, so_pin=SO_PIN)
    provisioning.initialise(memory, PIN, "test")
    store.save(memory)
    return card.SmartCardHsm(memory, store)


def verify(hsm: card.SmartCardHsm, pin: bytes | None = PIN) -> int:
    return sw(hsm.process(command(0x00, 0x20, 0x00, 0x81, pin or b"")))


def update(hsm: card.SmartCardHsm, fid: int, data: bytes, offset: int = 0) -> int:
    body = tlv.encode(0x54, offset.to_bytes(2, "big")) + tlv.encode(0x53, data)
    return sw(hsm.process(command(0x00, 0xD7, fid >> 8, fid & 0xFF, body)))


def read(hsm: card.SmartCardHsm, fid: int, offset: int = 0, le: int = 0) -> bytes:
    return hsm.process(
        command(0x00, 0xB1, fid >> 8, fid & 0xFF, tlv.encode(0x54, offset.to_bytes(2, "big")), le)
    )


def test_verify_without_a_pin_reports_the_tries_left_until_logged_in(hsm) -> None:
    assert verify(hsm, None) == 0x63C3
    assert verify(hsm) == apdu.OK
    assert verify(hsm, None) == apdu.OK


def test_wrong_pins_count_down_and_the_third_blocks_even_the_right_one(hsm, store) -> None:
    assert [verify(hsm, b"000000") for _ in range(3)] == [0x63C2, 0x63C1, 0x63C0]
    assert verify(hsm) == apdu.AUTH_BLOCKED
    assert verify(hsm, None) == apdu.AUTH_BLOCKED
    assert store.load().pins[flash.USER_PIN].tries_left == 0


def test_the_right_pin_restores_the_retry_counter(hsm, store) -> None:
    assert verify(hsm, b"000000") == 0x63C2
    assert verify(hsm) == apdu.OK
    assert store.load().pins[flash.USER_PIN].tries_left == 3


def test_the_so_pin_unblocks_the_user_pin_with_a_new_one(hsm) -> None:
    for _ in range(3):
        verify(hsm, b"000000")
    new = b"111111"
    answer = hsm.process(command(0x00, 0x2C, 0x00, 0x81, bytes.fromhex(SO_PIN) + new))
    assert sw(answer) == apdu.OK
    assert verify(hsm, new) == apdu.OK


def test_a_written_file_reads_back_from_any_offset(hsm) -> None:
    verify(hsm)
    assert update(hsm, 0xCD01, b"hello ") == apdu.OK
    assert update(hsm, 0xCD01, b"world", offset=6) == apdu.OK
    assert read(hsm, 0xCD01) == b"hello world" + apdu.END_OF_FILE.to_bytes(2, "big")
    assert read(hsm, 0xCD01, offset=6, le=5) == b"world\x90\x00"


def test_an_update_at_offset_zero_replaces_the_whole_file(hsm) -> None:
    verify(hsm)
    update(hsm, 0xCD01, b"a longer first value")
    update(hsm, 0xCD01, b"short")
    assert read(hsm, 0xCD01)[:-2] == b"short"


def test_writing_and_deleting_need_the_user_pin(hsm) -> None:
    assert update(hsm, 0xCD01, b"x") == apdu.SECURITY_NOT_SATISFIED
    verify(hsm)
    update(hsm, 0xCD01, b"x")
    hsm.power_on()
    assert sw(hsm.process(command(0x00, 0xE4, 0x02, 0x00, b"\xcd\x01"))) == apdu.SECURITY_NOT_SATISFIED


def test_protected_data_is_read_only_after_login_and_readable_data_always(hsm) -> None:
    verify(hsm)
    update(hsm, 0xCD01, b"secret")
    update(hsm, 0xCF01, b"public")
    hsm.power_on()
    assert sw(read(hsm, 0xCD01)) == apdu.SECURITY_NOT_SATISFIED
    assert read(hsm, 0xCF01)[:-2] == b"public"


def test_a_write_past_the_flash_is_refused_and_changes_nothing(hsm, store) -> None:
    verify(hsm)
    answers = [update(hsm, 0xCD01, bytes(1400), offset=1400 * i) for i in range(6)]
    assert answers == [apdu.OK] * 5 + [apdu.NOT_ENOUGH_MEMORY]  # 8 KiB of flash
    assert len(store.load().files[0xCD01]) == 1400 * 5


def test_commands_past_the_apdu_buffer_are_refused(hsm) -> None:
    verify(hsm)
    assert update(hsm, 0xCD01, bytes(card.MAX_COMMAND_DATA)) == apdu.WRONG_LENGTH
    assert update(hsm, 0xCD01, bytes(card.MAX_COMMAND_DATA - 8)) == apdu.OK


def test_enumerate_lists_every_file_and_delete_removes_one(hsm) -> None:
    verify(hsm)
    update(hsm, 0xC901, b"description")
    update(hsm, 0xCD01, b"data")
    listed = hsm.process(command(0x80, 0x58, 0x00, 0x00, le=0))
    assert listed == bytes.fromhex("2F02 2F03 C901 CD01 9000")
    assert sw(hsm.process(command(0x00, 0xE4, 0x02, 0x00, b"\xcd\x01"))) == apdu.OK
    assert sw(read(hsm, 0xCD01)) == apdu.FILE_NOT_FOUND


def test_selecting_the_applet_answers_its_version_and_a_file_its_size(hsm) -> None:
    answer = hsm.process(command(0x00, 0xA4, 0x04, 0x04, card.AID, le=0))
    ((tag, fcp),) = tlv.decode(answer[:-2])
    assert (tag, dict(tlv.decode(fcp))[0x85][-2:]) == (0x62, bytes(card.VERSION))
    answer = hsm.process(command(0x00, 0xA4, 0x00, 0x04, b"\x2f\x02", le=0))
    size = dict(tlv.decode(tlv.decode(answer[:-2])[0][1]))[0x80]
    assert int.from_bytes(size, "big") == len(provisioning.device_certificate("EMU0001"))


def test_get_challenge_answers_random_bytes_of_the_length_asked(hsm) -> None:
    first, second = (hsm.process(command(0x00, 0x84, 0x00, 0x00, le=32)) for _ in range(2))
    assert (len(first), first[-2:], first != second) == (34, b"\x90\x00", True)


def test_initialize_device_wipes_the_files_and_takes_only_the_first_so_pin_again(hsm, store) -> None:
    verify(hsm)
    update(hsm, 0xCD01, b"data")
    fields = tlv.encode(0x80, b"\x00\x01") + tlv.encode(0x81, b"222222") + tlv.encode(0x91, b"\x05")
    wrong = fields + tlv.encode(0x82, bytes(8))
    assert sw(hsm.process(command(0x80, 0x50, 0x00, 0x00, wrong))) == apdu.NOT_ALLOWED
    right = fields + tlv.encode(0x82, bytes.fromhex(SO_PIN))
    assert sw(hsm.process(command(0x80, 0x50, 0x00, 0x00, right))) == apdu.OK
    memory = store.load()
    assert set(memory.files) == {provisioning.DEVICE_CERTIFICATE}
    assert memory.pins[flash.USER_PIN] == flash.Pin(b"222222", 5, 5)


def test_the_flash_file_brings_back_the_card_as_it_was(hsm, store) -> None:
    verify(hsm)
    update(hsm, 0xCD01, b"kept")
    verify(hsm, b"000000")
    again = card.SmartCardHsm(store.load(), store)
    assert verify(again, None) == 0x63C2
    verify(again)
    assert read(again, 0xCD01)[:-2] == b"kept"


def test_apdus_parse_in_short_and_extended_form() -> None:
    assert apdu.parse(bytes.fromhex("80580000000000")) == apdu.Command(0x80, 0x58, 0, 0, b"", 65536, True)
    assert apdu.parse(bytes.fromhex("00A4040C02AABB")).data == b"\xaa\xbb"
    assert apdu.parse(bytes.fromhex("00B10000045402000000")).le == 256
    with pytest.raises(apdu.MalformedApdu):
        apdu.parse(bytes.fromhex("00A4040C05AABB"))


_SAVER = """
import pathlib, sys
from devcluster.schsm import flash, provisioning
store = flash.Flash(pathlib.Path(sys.argv[1]))
memory = provisioning.new_device("EMU0001")
n = 0
while True:
    n += 1
    memory.files[0xCD01] = bytes([n % 256]) * 60000
    store.save(memory)
    print(n, flush=True)
"""


def test_a_kill_during_a_save_leaves_the_whole_old_or_new_state(store) -> None:
    for _ in range(5):
        saver = subprocess.Popen([sys.executable, "-c", _SAVER, str(store.path)], stdout=subprocess.PIPE)
        assert saver.stdout is not None
        saver.stdout.readline()  # at least one save done: a kill now lands in another
        time.sleep(0.05)
        saver.send_signal(signal.SIGKILL)
        saver.wait(10)
        saver.stdout.close()
        data = store.load().files[0xCD01]
        assert data == bytes([data[0]]) * 60000
