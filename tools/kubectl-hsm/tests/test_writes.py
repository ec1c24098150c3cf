"""Writes that reached some devices only: the user learns which device missed it and why."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_hsm import cli, client

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


class _Moving:
    """A secret at version 4 that another writer changes before the rename's write arrives."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def request(self, method: str, route: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        self.sent.append((method, kwargs))
        if method == "GET":
            return 200, {"data": {"version": 4, "data": {"a": "MQ==", "b": "Mg=="}}}
        raise client.ApiError(412, "VERSION_CONFLICT", "secret is at version 5, not 4")

    @staticmethod
    def secret_route(path: str, suffix: str = "") -> str:
        return f"/hsm/secrets/{path}{suffix}"


def test_rename_key_writes_only_the_version_it_read(capsys: pytest.CaptureFixture[str]) -> None:
    """Simulated API (the real one's 412 on a stale If-Match is tested in tests/e2e/test_kubectl_hsm.py):
    what matters here is the request the plugin makes and what it says when it loses the race."""
    args = cli.build_parser().parse_args(["-n", "ns", "rename-key", "db", "a", "c"])
    api = _Moving()
    with pytest.raises(client.ApiError) as err:
        cli.cmd_rename_key(args, api)  # type: ignore[arg-type]
    [(_, _), (method, sent)] = api.sent
    assert method == "PATCH"
    assert sent["headers"] == {"If-Match": "4"}
    assert sent["json"] == {"data": {"c": "MQ==", "a": None}}
    assert "nothing was renamed: run the command again" in str(err.value)
