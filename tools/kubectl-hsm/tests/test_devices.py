"""``kubectl hsm devices``: how full each device is, in the table and passed through in JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubectl_hsm import cli, output

CAPACITY = {"maxObjects": 120, "usedObjects": 30, "freeObjects": 89, "ownObjects": 12, "ownBytes": 4000}
INFO = {
    "hsmDevice": "pair",
    "namespace": "hsm",
    "devices": [
        {"device": "hsm-a", "available": True, "label": "a", "serialNumber": "A1", "secretCount": 3,
         "capacity": {**CAPACITY, "totalMemory": 65536, "freeMemory": 1536}},
        {"device": "hsm-b", "available": True, "label": "b", "serialNumber": "B1", "secretCount": 3,
         "capacity": CAPACITY},
        {"device": "hsm-c", "available": False, "error": {"code": "DEVICE_UNAVAILABLE", "message": "down"}},
    ],
}  # fmt: skip


class _Api:
    """Answers GET /hsm/info the way the API does."""

    def request(self, method: str, route: str, **_: Any) -> tuple[int, dict[str, Any]]:
        assert (method, route) == ("GET", "/hsm/info")
        return 200, {"success": True, "data": INFO, "error": None}


def _devices(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    parsed = cli.build_parser().parse_args(["devices", *args])
    assert cli.cmd_devices(parsed, _Api()) == 0  # type: ignore[arg-type]
    return capsys.readouterr().out


def _rows(capsys: pytest.CaptureFixture[str]) -> dict[str, list[str]]:
    header, *lines = _devices(capsys).splitlines()
    assert header.split()[-3:] == ["OBJECTS", "FREE", "MEMORY"]
    return {line.split()[0]: line.split() for line in lines}


def test_the_table_shows_used_and_max_objects_and_free_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert _rows(capsys)["hsm-a"][-3:-1] == ["30/120", "89"]


def test_the_table_shows_free_and_total_memory_where_reported(capsys: pytest.CaptureFixture[str]) -> None:
    rows = _rows(capsys)
    assert rows["hsm-a"][-1] == "1.5Ki/64Ki"
    assert rows["hsm-b"][-1] == "-"


def test_a_device_without_capacity_shows_dashes(capsys: pytest.CaptureFixture[str]) -> None:
    assert _rows(capsys)["hsm-c"][-3:] == ["-", "-", "-"]


def test_json_passes_the_capacity_through(capsys: pytest.CaptureFixture[str]) -> None:
    shown = json.loads(_devices(capsys, "-o", "json"))
    assert shown["devices"][0]["capacity"]["totalMemory"] == 65536
    assert shown["devices"][1]["capacity"] == CAPACITY


@pytest.mark.parametrize(
    ("count", "shown"), [(0, "0"), (1023, "1023"), (1024, "1Ki"), (1536, "1.5Ki"), (3 * 2**20, "3Mi")]
)
def test_sizes_read_like_kubernetes_quantities(count: int, shown: str) -> None:
    assert output.size(count) == shown
