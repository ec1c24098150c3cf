"""hsm-agent selftest on real SoftHSM2 tokens: the test cycle and its cleanup, the operations, the exit
codes a script relies on, and the PIN: never on argv, never printed, one login attempt."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pkcs11
import pytest

from hsm_agent.store import layout
from hsm_agent.tools import selftest

from . import pinleak

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
SPY = "/usr/lib/x86_64-linux-gnu/pkcs11-spy.so"


@pytest.fixture
def tool(softhsm, capsys):  # type: ignore[no-untyped-def]
    """Run selftest in this process with the token's PIN file: (exit code, stdout, stderr)."""

    def run_tool(*args: str, pin_file: bool = True) -> tuple[int, str, str]:
        flags = ["--token-label", softhsm.label] + (["--pin-file", str(softhsm.pin_file)] if pin_file else [])
        code = selftest.main([*flags, *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run_tool


def _process(softhsm, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`hsm-agent selftest` as its own process (the entry point the image runs), stdin not a terminal."""
    return subprocess.run(
        [sys.executable, "-m", "hsm_agent", "selftest", *args],
        env={**softhsm.env(), **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _records(softhsm) -> list[str]:
    return [obj["label"] for obj in softhsm.tool("list") if obj["app"] == layout.APPLICATION_RECORD]


def test_the_test_cycle_writes_reads_verifies_and_deletes_its_scratch_secret(
    softhsm, tool, logged_in
) -> None:
    code, out, _ = tool("--json", "test")
    assert code == 0
    report = json.loads(out)
    assert [(step["name"], step["ok"]) for step in report["steps"]] == [
        ("write", True),
        ("verify", True),
        ("delete", True),
        ("gone", True),
    ]
    assert _records(softhsm) == []
    with logged_in(softhsm) as store:
        assert store.index.get(selftest.SCRATCH_PATH).deleted


def test_a_cycle_interrupted_after_its_write_deletes_the_scratch_secret(
    softhsm, logged_in, monkeypatch
) -> None:
    with logged_in(softhsm) as store:

        def interrupted(path: str) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(store, "read", interrupted)
        with pytest.raises(KeyboardInterrupt):
            selftest.cycle(store)
        assert store.index.get(selftest.SCRATCH_PATH).deleted
    with logged_in(softhsm) as fresh:  # read from the token again: the delete is there, not only in memory
        assert fresh.index.get(selftest.SCRATCH_PATH).deleted
    assert _records(softhsm) == []


def test_a_scratch_secret_a_killed_run_left_is_removed_by_the_next_run(softhsm, tool, logged_in) -> None:
    with logged_in(softhsm) as store:
        store.write(selftest.SCRATCH_PATH, {"small": b"left over"}, None)
    assert tool("test")[0] == 0
    assert _records(softhsm) == []


def test_a_wrong_pin_is_refused_after_one_login_and_the_token_stays_usable(softhsm, tmp_path) -> None:
    # The project's set-up installs OpenSC, which ships the spy: without it this check must fail, not vanish.
    assert os.path.exists(SPY), f"OpenSC's pkcs11-spy is missing at {SPY}"
    calls = tmp_path / "pkcs11-calls.log"  # the spy logs the PIN too: it stays in the test's directory
    done = _process(
        softhsm,
        "--token-label",
        softhsm.label,
        "--pkcs11-library",
        SPY,
        "test",
        env={"HSM_AGENT_PIN": "0000", "PKCS11SPY": MODULE, "PKCS11SPY_OUTPUT": str(calls)},
    )
    assert done.returncode == 5
    assert "the token rejected the PIN" in done.stderr
    assert "0000" not in done.stdout + done.stderr
    assert calls.read_text().count("C_Login") == 1
    lib = pkcs11.lib(MODULE)
    lib.reinitialize()
    flags = lib.get_token(token_label=softhsm.label).flags
    assert flags & pkcs11.TokenFlag.USER_PIN_COUNT_LOW  # SoftHSM2 recorded the one failure
    assert not flags & (pkcs11.TokenFlag.USER_PIN_LOCKED | pkcs11.TokenFlag.USER_PIN_FINAL_TRY)
    assert (
        _process(softhsm, "--token-label", softhsm.label, "test", env={"HSM_AGENT_PIN": "1234"}).returncode
        == 0
    )


@pytest.mark.parametrize("module", ["/nonexistent/libpkcs11.so", "/usr/lib/x86_64-linux-gnu/libz.so.1"])
def test_a_module_that_does_not_load_exits_3(tool, module: str) -> None:
    code, _, err = tool("--pkcs11-library", module, "info")
    assert code == 3
    assert f"cannot load the PKCS#11 module {module}" in err


def test_a_token_that_is_not_there_exits_4(softhsm, capsys) -> None:
    code = selftest.main(["--token-label", "no-such-token", "--pin-file", str(softhsm.pin_file), "info"])
    assert code == 4
    assert "no token labelled 'no-such-token'" in capsys.readouterr().err


def test_a_full_token_exits_6_and_keeps_nothing_of_the_cycle(softhsm, tool) -> None:
    softhsm.tool("create", "other-tool", "a-certificate", "00")
    code, _, err = tool("--max-objects", "3", "test")
    assert code == 6
    assert "at its budget: 1 of 3 objects used" in err
    assert _records(softhsm) == []


@pytest.mark.parametrize("argv", [["--pin=12345678", "test"], ["--pin", "12345678"], ["--pin-code=12345678"]])
def test_a_pin_on_the_command_line_is_refused_without_echoing_it(capsys, argv: list[str]) -> None:
    assert selftest.main(argv) == 2
    out, err = capsys.readouterr()
    assert "never taken on the command line" in err
    assert "12345678" not in out + err


def test_the_pin_comes_from_the_environment_and_never_reaches_the_output(softhsm) -> None:
    done = _process(
        softhsm, "--token-label", softhsm.label, "--log-level", "debug", "test", env={"HSM_AGENT_PIN": "1234"}
    )
    assert done.returncode == 0, done.stderr
    assert "selftest passed" in done.stdout
    assert not pinleak.shows("1234", done.stdout + done.stderr)


def test_without_a_pin_file_variable_or_terminal_it_exits_2(softhsm) -> None:
    done = _process(softhsm, "--token-label", softhsm.label, "test", env={"HSM_AGENT_PIN": ""})
    assert done.returncode == 2
    assert "no PIN" in done.stderr


class _Terminal:
    def isatty(self) -> bool:
        return True


def test_a_pin_typed_at_the_prompt_logs_in(softhsm, monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal())
    monkeypatch.setattr("getpass.getpass", lambda prompt: "1234")
    monkeypatch.delenv("HSM_AGENT_PIN", raising=False)
    assert selftest.main(["--token-label", softhsm.label, "info"]) == 0


def test_write_list_read_and_delete_a_secret_from_files(
    softhsm, tmp_path: pathlib.Path, capsysbinary
) -> None:
    value = bytes(range(256)) * 3
    (tmp_path / "value").write_bytes(value)
    flags = ["--token-label", softhsm.label, "--pin-file", str(softhsm.pin_file)]
    assert selftest.main([*flags, "write", "team/db", "--from-file", f"blob={tmp_path / 'value'}"]) == 0
    assert b"wrote team/db version 1 (blob)" in capsysbinary.readouterr().out
    assert selftest.main([*flags, "list", "team"]) == 0
    assert capsysbinary.readouterr().out.startswith(b"team/db  v1  blob")
    assert selftest.main([*flags, "read", "team/db"]) == 0
    shown = capsysbinary.readouterr().out
    assert b"blob: 768 bytes" in shown
    assert value not in shown
    assert selftest.main([*flags, "read", "team/db", "--key", "blob"]) == 0
    assert capsysbinary.readouterr().out == value
    assert selftest.main([*flags, "delete", "team/db"]) == 0
    capsysbinary.readouterr()
    assert selftest.main([*flags, "read", "team/db"]) == 8


def test_info_reports_the_token_and_how_full_it_is(softhsm, tool) -> None:
    code, out, _ = tool("--json", "--max-objects", "50", "info")
    assert code == 0
    report = json.loads(out)
    assert report["token"]["label"].strip() == softhsm.label
    assert (report["capacity"]["max_objects"], report["secrets"]) == (50, 0)


def test_hsm_agent_runs_the_tools_by_their_first_argument(softhsm) -> None:
    env = {**softhsm.env(), "HSM_AGENT_PIN": "1234"}
    label = ["--token-label", softhsm.label]
    for tool_args in (
        ["selftest", *label, "--json", "info"],
        ["import-legacy", *label, "--json", "--namespace", "x"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "hsm_agent", *tool_args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["ok"] is True
