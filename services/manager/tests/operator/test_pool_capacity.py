"""The reconciler asks Ready agents how full their tokens are and warns once when a pool runs low."""

from __future__ import annotations

import datetime
from typing import Any

from hsm_common import constants, models, report
from hsm_manager.decide import agentreach, capacity, model
from hsm_manager.gateway import errors
from hsm_manager.operator import config, pools

from .. import fakes

CFG = config.OperatorConfig("ns", "hsm-agent:dev", "hsm-discovery:dev")


def figures(used: int, budget: int = 10) -> model.Capacity:
    return model.Capacity(
        max_objects=budget, used_objects=used, free_objects=budget - used - 1, own_objects=used, own_bytes=9
    )


def agents(reported: dict[str, model.Capacity | None], down: tuple[str, ...] = ()) -> fakes.FakeDirectory:
    """One Ready agent per serial reporting those figures (None: none); those in down do not answer."""
    directory = fakes.FakeDirectory()
    for serial, figures_of in reported.items():
        agent = directory.add("hsm", f"hsm-agent-{serial}", serial=serial)
        agent.capacity, agent.down = figures_of, serial in down
    return directory


class FakeKube:
    """An HSMPool, one discovery pod reporting devices A and B, and the events recorded."""

    def __init__(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        devices = [
            report.ReportedDevice(
                device_path=f"/dev/{serial}", serial_number=serial, vendor_id="20a0", product_id="4230",
                available=True, last_seen=now,
            )
            for serial in ("A", "B")
        ]  # fmt: skip
        content = report.DeviceReport(
            node_name="n1", report_time=now, devices={"hsm": report.DeviceEntry(devices=devices)}
        )
        self.pod = {
            "metadata": {
                "name": "d-1",
                "annotations": {constants.ANNOTATION_DEVICE_REPORT: content.model_dump_json()},
            },
            "spec": {"nodeName": "n1"},
        }
        self.pool: dict[str, Any] = {"metadata": {"name": "hsm-pool", "namespace": "ns"}, "spec": {}}
        self.events: list[tuple[str, str, bool]] = []

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        return self.pool

    def list_objects(self, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        return [self.pod]

    def patch_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        self.pool = {**self.pool, "status": status}
        return self.pool

    def event(self, involved: dict[str, Any], reason: str, message: str, warning: bool = False) -> None:
        self.events.append((reason, message, warning))


def reconciler(client: FakeKube, directory: fakes.FakeDirectory) -> pools.Reconciler:
    return pools.Reconciler(client, None, CFG, directory)  # type: ignore[arg-type]


def aggregate(client: FakeKube, directory: fakes.FakeDirectory) -> models.HSMPoolStatus:
    recon = reconciler(client, directory)
    status = recon._aggregate("ns", "hsm", recon._ask_agents("ns", "hsm"), None)
    assert status is not None
    return status


def test_an_agent_that_does_not_answer_leaves_only_its_device_without_capacity() -> None:
    status = aggregate(FakeKube(), agents({"A": figures(3), "B": figures(4)}, down=("B",)))
    shown = {d.serial_number: d.capacity for d in status.aggregated_devices}
    assert shown["A"] is not None
    assert shown["A"].used_objects == 3
    assert shown["B"] is None


def test_an_agent_without_capacity_figures_leaves_its_device_without_capacity() -> None:
    status = aggregate(FakeKube(), agents({"A": figures(3), "B": None}))
    assert [d.capacity is None for d in status.aggregated_devices] == [False, True]


def test_the_pool_status_written_holds_the_capacity() -> None:
    client = FakeKube()
    aggregate(client, agents({"A": figures(3), "B": figures(4)}))
    written = client.pool["status"]["aggregatedDevices"]
    assert [d["capacity"]["usedObjects"] for d in written] == [3, 4]


def test_a_pool_running_low_gets_one_warning_event_naming_the_device() -> None:
    client = FakeKube()
    directory = agents({"A": figures(3), "B": figures(4)})
    aggregate(client, directory)
    directory.clients["hsm-agent-B"].capacity = figures(8)
    aggregate(client, directory)
    aggregate(client, directory)
    low = [event for event in client.events if event[0] == capacity.CONDITION]
    assert low == [(capacity.CONDITION, "device B uses 8 of 10 objects (80%), 1 free", True)]


def answering(status: models.HSMPoolStatus) -> models.Condition:
    return next(c for c in status.conditions if c.type == agentreach.CONDITION)


def test_a_refused_agent_certificate_shows_on_the_pool_with_the_agent_and_one_warning_until_it_answers() -> (
    None
):
    client = FakeKube()
    directory = agents({"A": figures(3), "B": figures(4)})
    directory.clients["hsm-agent-B"].failures["info"] = errors.Untrusted(
        "hsm-agent-B", "its TLS certificate has expired"
    )
    refused = answering(aggregate(client, directory))
    assert refused.status == models.ConditionStatus.FALSE
    assert refused.reason == "CertificateRefused"
    assert refused.message == "agent hsm-agent-B: its TLS certificate has expired"
    aggregate(client, directory)
    assert [e for e in client.events if e[0] == agentreach.CONDITION] == [
        (agentreach.CONDITION, refused.message, True)
    ]
    del directory.clients["hsm-agent-B"].failures["info"]
    assert answering(aggregate(client, directory)).status == models.ConditionStatus.TRUE


def test_an_agent_that_does_not_answer_shows_on_the_pool_as_not_answering() -> None:
    status = aggregate(FakeKube(), agents({"A": figures(3), "B": figures(4)}, down=("B",)))
    condition = answering(status)
    assert condition.reason == "AgentsNotAnswering"
    assert condition.message == "agent hsm-agent-B: does not answer (Unavailable)"
