"""Every service's console script is installed and prints a real --help."""

import subprocess

import pytest


@pytest.mark.parametrize(
    ("script", "expected"),
    [("hsm-agent", "--pin-file"), ("hsm-discovery", "--rescan-interval"), ("hsm-manager", "operator")],
)
def test_console_scripts_print_help(script: str, expected: str) -> None:
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert f"usage: {script}" in result.stdout
    assert expected in result.stdout
