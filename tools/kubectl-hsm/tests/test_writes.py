"""Writes that reached some devices only: the user learns which device missed it and why."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_hsm import cli

FULL = "no room for 2 more objects: 119 of 120 used, 0 free"


class _Api:
    """Answers a create with 207: hsm-a took it, hsm-b was full."""

    def request(self, method: str, route: str, **_: Any) -> tuple[int, dict[str, Any]]:
        devices = [
            {"device": "hsm-a", "success": True, "version": 1},
            {"device": "hsm-b", "success": False, "error": {"code": "DEVICE_FULL", "message": FULL}},
        ]
        return 207, {"success": False, "data": {"path": "ns/db", "version": 1, "devices": devices}}

    @staticmethod
    def secret_route(path: str, suffix: str = "") -> str:
        return f"/hsm/secrets/{path}{suffix}"


def test_a_partial_write_names_the_missing_device_and_its_reason(capsys: pytest.CaptureFixture[str]) -> None:
    args = cli.build_parser().parse_args(["-n", "ns", "create", "db", "--from-literal", "k=v"])
    assert cli.cmd_write(args, _Api()) == 0  # type: ignore[arg-type]
    assert f"missing on hsm-b ({FULL})" in capsys.readouterr().err
