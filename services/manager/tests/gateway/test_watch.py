"""Watch streams: an agent whose certificate is refused is logged once with the reason, not at every retry."""

from __future__ import annotations

import logging

import pytest

from hsm_manager.gateway import errors, watch

from .. import fakes
from ..polling import wait_until


def test_a_refused_agent_certificate_is_logged_once_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    directory = fakes.FakeDirectory()
    refused = directory.add("hsm", "hsm-a")
    refused.failures["watch"] = errors.Untrusted("hsm-a", "its TLS certificate has expired")
    streams = watch.Watches(directory, lambda _e, _event: None, lambda _e, _up: None)
    with caplog.at_level(logging.INFO, logger=watch.__name__):
        streams.reconcile(directory.endpoints("ns"))
        try:
            wait_until(lambda: refused.calls.count("watch") >= 3, 10, "three attempts to watch")
        finally:
            streams.stop_all()
    said = [r for r in caplog.records if r.getMessage() == "agent certificate refused"]
    assert [(r.levelno, r.__dict__["agent"], r.__dict__["reason"]) for r in said] == [
        (logging.WARNING, "hsm-a", "its TLS certificate has expired")
    ]
