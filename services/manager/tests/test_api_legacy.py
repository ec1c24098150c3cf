"""POST /hsm/import-legacy's fan-out: every agent asked at once, each answer reported on its own."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from hsm_manager.api import errors, legacy
from hsm_manager.gateway import client
from hsm_manager.gateway import errors as agent_errors
from hsm_manager.mirroring import service

from . import fakes


@pytest.fixture
def directory() -> fakes.FakeDirectory:
    found = fakes.FakeDirectory()
    found.add("pair", "hsm-a")
    found.add("pair", "hsm-b")
    found.add("solo", "hsm-s")
    return found


def _run(directory: fakes.FakeDirectory) -> tuple[dict[str, Any], bool]:
    mirror = service.Mirror(directory, "ns")
    return legacy.run(legacy.chosen(mirror, None), client.LegacyImportRequest(apply=True))


class MeetingAgent(fakes.FakeAgentClient):
    """A fake agent whose imports wait at meeting before they start."""

    def __init__(self, name: str, meeting: threading.Barrier) -> None:
        super().__init__(name)
        self._meeting = meeting

    def import_legacy(self, request: client.LegacyImportRequest) -> client.LegacyImport:
        self._meeting.wait()
        return super().import_legacy(request)


def test_every_agent_of_every_device_imports_at_the_same_time() -> None:
    # Each import waits until all three have started: asked one after the other, the barrier breaks.
    meeting = threading.Barrier(3, timeout=10)
    directory = fakes.FakeDirectory()
    for device, name in (("pair", "hsm-a"), ("pair", "hsm-b"), ("solo", "hsm-s")):
        directory.add(device, MeetingAgent(name, meeting))
    report, complete = _run(directory)
    assert complete
    assert [(d["hsmDevice"], d["device"], d["error"]) for d in report["devices"]] == [
        ("pair", "hsm-a", None),
        ("pair", "hsm-b", None),
        ("solo", "hsm-s", None),
    ]


def test_an_agent_that_is_down_is_reported_and_the_others_still_import(
    directory: fakes.FakeDirectory,
) -> None:
    directory.clients["hsm-b"].down = True
    report, complete = _run(directory)
    assert not complete
    errors_by_device = {d["device"]: d["error"] for d in report["devices"]}
    assert errors_by_device["hsm-a"] is None
    assert errors_by_device["hsm-s"] is None
    assert errors_by_device["hsm-b"]["code"] == "DEVICE_UNAVAILABLE"
    assert directory.clients["hsm-s"].calls == ["import_legacy"]


def test_an_agent_that_refuses_the_input_fails_the_request_naming_it(directory: fakes.FakeDirectory) -> None:
    refused = agent_errors.InvalidArgument("hsm-s", "mapping: 'Bad' is not a namespace")
    directory.clients["hsm-s"].failures["import_legacy"] = refused
    with pytest.raises(errors.InvalidArgument, match="hsm-s: mapping: 'Bad' is not a namespace"):
        _run(directory)
