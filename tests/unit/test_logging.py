"""The log formats: one parseable JSON object per record (extras and tracebacks included), or readable text."""

import json
import logging
import sys

from service.infra.logs import JsonFormatter, RequestIdFilter, text_formatter


def _record(**extra: object) -> logging.LogRecord:
    logger = logging.getLogger("service.test")
    return logger.makeRecord(logger.name, logging.WARNING, __file__, 1, "%s -> %d", ("GET /x", 502), None, extra=extra)


def test_json_line_has_the_fields_and_the_extras():
    line = JsonFormatter().format(_record(request_id="r-1", route="/x", status=502, duration_ms=1.5))
    assert "\n" not in line
    document = json.loads(line)
    assert document["level"] == "WARNING"
    assert document["logger"] == "service.test"
    assert document["message"] == "GET /x -> 502"
    assert document["request_id"] == "r-1"
    assert (document["route"], document["status"], document["duration_ms"]) == ("/x", 502, 1.5)
    assert document["timestamp"].endswith("+00:00")
    assert "args" not in document and "msg" not in document, "record internals stay out"


def test_json_line_outside_a_request_has_a_null_id_and_keeps_the_traceback():
    try:
        raise ValueError("boom")
    except ValueError:
        logger = logging.getLogger("service.test")
        record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert RequestIdFilter().filter(record)
    document = json.loads(JsonFormatter().format(record))
    assert document["request_id"] is None
    assert "ValueError: boom" in document["exception"]


def test_values_json_cannot_hold_are_written_as_text():
    document = json.loads(JsonFormatter().format(_record(path=b"/bytes", peer=("127.0.0.1", 1))))
    assert document["path"] == "b'/bytes'"
    assert document["peer"] == ["127.0.0.1", 1]


def test_text_line_shows_the_request_id_or_a_dash():
    assert "[r-2] GET /x -> 502" in text_formatter().format(_record(request_id="r-2"))
    assert "WARNING service.test [-] GET /x -> 502" in text_formatter().format(_record())
