from __future__ import annotations

import datetime
import json
import pathlib

from hsm_common import report
from hsm_discovery import reporter, sink

T0 = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_report(at: datetime.datetime, hsm_devices: int = 1) -> report.DeviceReport:
    return report.DeviceReport(
        node_name="n", report_time=at, devices={f"d{i}": report.DeviceEntry() for i in range(hsm_devices)}
    )


def read(path: pathlib.Path) -> report.DeviceReport:
    return report.DeviceReport.model_validate(json.loads(path.read_text()))


def test_unchanged_content_is_not_rewritten_before_the_heartbeat(tmp_path: pathlib.Path) -> None:
    clock = Clock()
    writer = reporter.Reporter(sink.File(tmp_path / "r.json"), heartbeat=60, clock=clock)
    assert writer.offer(make_report(T0))
    clock.now += 10
    assert not writer.offer(make_report(T0 + datetime.timedelta(seconds=10)))


def test_heartbeat_rewrites_with_a_new_report_time(tmp_path: pathlib.Path) -> None:
    clock = Clock()
    writer = reporter.Reporter(sink.File(tmp_path / "r.json"), heartbeat=60, clock=clock)
    writer.offer(make_report(T0))
    clock.now += 60
    assert writer.offer(make_report(T0 + datetime.timedelta(seconds=60)))
    assert read(tmp_path / "r.json").report_time == T0 + datetime.timedelta(seconds=60)


def test_changed_content_is_written_at_once(tmp_path: pathlib.Path) -> None:
    clock = Clock()
    writer = reporter.Reporter(sink.File(tmp_path / "r.json"), heartbeat=60, clock=clock)
    writer.offer(make_report(T0))
    clock.now += 1
    assert writer.offer(make_report(T0, hsm_devices=2))


def test_after_a_failure_the_retry_writes_the_current_report(tmp_path: pathlib.Path) -> None:
    clock = Clock()
    target = tmp_path / "later" / "r.json"
    writer = reporter.Reporter(sink.File(target), heartbeat=60, clock=clock)
    assert not writer.offer(make_report(T0, hsm_devices=1))
    target.parent.mkdir()
    clock.now = writer.next_due()
    assert writer.offer(make_report(T0, hsm_devices=3))
    assert len(read(target).devices) == 3


def test_failures_back_off_before_retrying(tmp_path: pathlib.Path) -> None:
    clock = Clock()
    writer = reporter.Reporter(sink.File(tmp_path / "missing" / "r.json"), heartbeat=60, clock=clock)
    writer.offer(make_report(T0))
    first = writer.next_due() - clock.now
    clock.now = writer.next_due()
    writer.offer(make_report(T0))
    assert writer.next_due() - clock.now == 2 * first
    assert not writer.written
