"""Device info: the agent's capacity passed through in the API's camelCase, unreported memory left out."""

from __future__ import annotations

import dataclasses
from typing import Any

from hsm_manager.api import views
from hsm_manager.decide import model
from hsm_manager.mirroring import devices, service

from . import fakes

FIGURES = model.Capacity(max_objects=120, used_objects=30, free_objects=89, own_objects=12, own_bytes=4000)


def _info(capacity: model.Capacity | None) -> dict[str, Any]:
    directory = fakes.FakeDirectory()
    directory.add("pair", "hsm-a").capacity = capacity
    group = service.Mirror(directory, "ns").resolve("pair")
    [entry] = views.device_info(group.device, group.namespace, devices.info(group))["devices"]
    found: dict[str, Any] = entry
    return found


def test_capacity_figures_reach_the_answer_in_camel_case() -> None:
    assert _info(FIGURES)["capacity"] == {
        "maxObjects": 120,
        "usedObjects": 30,
        "freeObjects": 89,
        "ownObjects": 12,
        "ownBytes": 4000,
    }


def test_memory_is_shown_only_where_the_token_reports_it() -> None:
    capacity = _info(dataclasses.replace(FIGURES, total_memory=65536, free_memory=0))["capacity"]
    assert (capacity["totalMemory"], capacity["freeMemory"]) == (65536, 0)


def test_an_agent_that_reports_no_capacity_has_none_in_the_answer() -> None:
    entry = _info(None)
    assert entry["available"]
    assert "capacity" not in entry
