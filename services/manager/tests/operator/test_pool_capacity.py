"""The reconciler asks Ready agents how full their tokens are and warns once when a pool runs low."""

from __future__ import annotations

import datetime
from typing import Any

import grpc

from hsm_common import constants, models, report
from hsm_manager.agents import registry
from hsm_manager.decide import capacity
from hsm_manager.operator import config, pools
from hsmproto.v1 import hsm_pb2

CFG = config.OperatorConfig("ns", "hsm-agent:dev", "hsm-discovery:dev")


def endpoint(serial: str) -> registry.AgentEndpoint:
    return registry.AgentEndpoint("hsm", "ns", f"hsm-agent-{serial}", serial, "n1", f"{serial}:9090")


class _Stub:
    def __init__(self, answer: hsm_pb2.GetInfoResponse | None) -> None:
        self._answer = answer

    def GetInfo(self, request: hsm_pb2.GetInfoRequest, timeout: float) -> hsm_pb2.GetInfoResponse:
        assert timeout == CFG.call_timeout
        if self._answer is None:
            raise grpc.RpcError()
        return self._answer


class FakeRegistry:
    """Ready agents by serial; None answers with an RPC error (an agent that does not answer)."""

    def __init__(self, answers: dict[str, hsm_pb2.GetInfoResponse | None]) -> None:
        self.answers = answers

    def endpoints(self, namespace: str, device: str | None = None) -> list[registry.AgentEndpoint]:
        return [endpoint(serial) for serial in sorted(self.answers)]

    def stub(self, found: registry.AgentEndpoint) -> _Stub:
        return _Stub(self.answers[found.serial])


def info(used: int, budget: int = 10) -> hsm_pb2.GetInfoResponse:
    figures = hsm_pb2.Capacity(
        max_objects=budget, used_objects=used, free_objects=budget - used - 1, own_objects=used, own_bytes=9
    )
    return hsm_pb2.GetInfoResponse(capacity=figures)


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

    def get_custom(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        return self.pool

    def list_objects(self, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        return [self.pod]

    def patch_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        self.pool = {**self.pool, "status": status}
        return self.pool

    def event(self, involved: dict[str, Any], reason: str, message: str, warning: bool = False) -> None:
        self.events.append((reason, message, warning))


def reconciler(client: FakeKube, agents: FakeRegistry) -> pools.Reconciler:
    return pools.Reconciler(client, None, CFG, agents)  # type: ignore[arg-type]


def aggregate(client: FakeKube, agents: FakeRegistry) -> models.HSMPoolStatus:
    recon = reconciler(client, agents)
    status = recon._aggregate("ns", "hsm", recon._capacities("ns", "hsm"))
    assert status is not None
    return status


def test_an_agent_that_does_not_answer_leaves_only_its_device_without_capacity() -> None:
    status = aggregate(FakeKube(), FakeRegistry({"A": info(3), "B": None}))
    shown = {d.serial_number: d.capacity for d in status.aggregated_devices}
    assert shown["A"] is not None
    assert shown["A"].used_objects == 3
    assert shown["B"] is None


def test_an_agent_without_capacity_figures_leaves_its_device_without_capacity() -> None:
    status = aggregate(FakeKube(), FakeRegistry({"A": info(3), "B": hsm_pb2.GetInfoResponse()}))
    assert [d.capacity is None for d in status.aggregated_devices] == [False, True]


def test_the_pool_status_written_holds_the_capacity() -> None:
    client = FakeKube()
    aggregate(client, FakeRegistry({"A": info(3), "B": info(4)}))
    written = client.pool["status"]["aggregatedDevices"]
    assert [d["capacity"]["usedObjects"] for d in written] == [3, 4]


def test_a_pool_running_low_gets_one_warning_event_naming_the_device() -> None:
    client = FakeKube()
    agents = FakeRegistry({"A": info(3), "B": info(4)})
    aggregate(client, agents)
    agents.answers["B"] = info(8)
    aggregate(client, agents)
    aggregate(client, agents)
    low = [event for event in client.events if event[0] == capacity.CONDITION]
    assert low == [(capacity.CONDITION, "device B uses 8 of 10 objects (80%), 1 free", True)]
