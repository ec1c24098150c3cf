import io
import json
import logging

from hsm_common import logs


def test_json_lines_carry_event_and_fields_and_redact_sensitive_ones() -> None:
    stream = io.StringIO()
    logs.setup("debug", stream)
    logging.getLogger("t").info("secret_written", extra={"path": "ns/db", "pin": "123456", "value": "x"})
    line = json.loads(stream.getvalue())
    assert line["event"] == "secret_written"
    assert line["path"] == "ns/db"
    assert line["pin"] == logs.REDACTED
    assert line["value"] == logs.REDACTED
    assert "123456" not in stream.getvalue()


def test_redaction_reaches_nested_fields() -> None:
    assert logs.redact({"request": {"new_pin": "1", "path": "p"}}) == {
        "request": {"new_pin": logs.REDACTED, "path": "p"}
    }
