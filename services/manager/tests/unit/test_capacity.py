import datetime

from hsm_common import models, report
from hsm_manager.decide import capacity, pool

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
LATER = NOW + datetime.timedelta(seconds=10)
GRACE = 300.0
EMPTY = models.HSMPoolStatus()


def figures(used: int, budget: int = 120, at: datetime.datetime = NOW) -> models.DeviceCapacity:
    return models.DeviceCapacity(
        max_objects=budget,
        used_objects=used,
        free_objects=max(budget - used - 1, 0),
        own_objects=used,
        own_bytes=100 * used,
        observed_at=at,
    )


def discovery(*serials: str) -> list[pool.DiscoveryPod]:
    devices = [
        report.ReportedDevice(
            device_path=f"/dev/bus/usb/001/00{n}",
            serial_number=serial,
            vendor_id="20a0",
            product_id="4230",
            available=True,
            last_seen=NOW,
        )
        for n, serial in enumerate(serials)
    ]
    content = report.DeviceReport(
        node_name="n1", report_time=NOW, devices={"hsm": report.DeviceEntry(devices=devices)}
    )
    return [pool.DiscoveryPod("d-1", "n1", content.model_dump_json())]


def aggregate(
    readings: dict[str, models.DeviceCapacity] | None,
    previous: models.HSMPoolStatus = EMPTY,
    now: datetime.datetime = NOW,
    serials: tuple[str, ...] = ("A", "B"),
) -> models.HSMPoolStatus:
    return pool.aggregate("hsm", discovery(*serials), previous, GRACE, now, readings)


def low_condition(status: models.HSMPoolStatus) -> models.Condition:
    return next(c for c in status.conditions if c.type == capacity.CONDITION)


def test_each_device_gets_the_figures_its_agent_reported_by_serial() -> None:
    status = aggregate({"A": figures(10), "B": figures(20)})
    assert {d.serial_number: d.capacity for d in status.aggregated_devices} == {
        "A": figures(10),
        "B": figures(20),
    }


def test_a_device_whose_agent_did_not_answer_has_no_capacity() -> None:
    first = aggregate({"A": figures(10), "B": figures(20)})
    status = aggregate({"A": figures(10)}, first, LATER)
    assert {d.serial_number: d.capacity is None for d in status.aggregated_devices} == {"A": False, "B": True}


def test_a_pass_without_reading_keeps_the_previous_figures() -> None:
    first = aggregate({"A": figures(10), "B": figures(20)})
    assert aggregate(None, first, LATER).aggregated_devices == first.aggregated_devices


def test_unchanged_figures_keep_their_time_so_an_idle_pool_is_not_rewritten() -> None:
    first = aggregate({"A": figures(10), "B": figures(20)})
    second = aggregate({"A": figures(10, at=LATER), "B": figures(20, at=LATER)}, first, LATER)
    assert second == first


def test_changed_figures_carry_the_time_they_were_read() -> None:
    first = aggregate({"A": figures(10), "B": figures(20)})
    second = aggregate({"A": figures(11, at=LATER), "B": figures(20, at=LATER)}, first, LATER)
    assert second.aggregated_devices[0].capacity == figures(11, at=LATER)
    assert second.last_aggregation_time == LATER


def test_a_device_at_eighty_percent_of_its_budget_makes_capacity_low() -> None:
    condition = low_condition(aggregate({"A": figures(96), "B": figures(20)}))
    assert condition.status == models.ConditionStatus.TRUE
    assert condition.message == "device A uses 96 of 120 objects (80%), 23 free"


def test_devices_below_eighty_percent_are_not_low() -> None:
    condition = low_condition(aggregate({"A": figures(95), "B": figures(20)}))
    assert condition.status == models.ConditionStatus.FALSE


def test_without_figures_from_every_device_capacity_is_unknown() -> None:
    assert low_condition(aggregate({"A": figures(10)})).status == models.ConditionStatus.UNKNOWN


def test_a_low_device_that_stops_answering_keeps_the_pool_low() -> None:
    first = aggregate({"A": figures(100), "B": figures(20)})
    status = aggregate({"B": figures(20)}, first, LATER)
    assert low_condition(status) == low_condition(first)


def test_the_warning_is_given_when_the_pool_turns_low() -> None:
    first = aggregate({"A": figures(10), "B": figures(20)})
    second = aggregate({"A": figures(100), "B": figures(20)}, first, LATER)
    assert capacity.warning(first.conditions, second.conditions) == low_condition(second).message


def test_the_warning_is_not_repeated_while_the_pool_stays_low() -> None:
    first = aggregate({"A": figures(100), "B": figures(20)})
    second = aggregate({"A": figures(101), "B": figures(20)}, first, LATER)
    assert capacity.warning(first.conditions, second.conditions) is None


def test_no_warning_while_every_device_has_room() -> None:
    status = aggregate({"A": figures(10), "B": figures(20)})
    assert capacity.warning(EMPTY.conditions, status.conditions) is None


def test_a_budget_of_zero_is_never_low() -> None:
    assert not capacity.low(figures(0, budget=0))
