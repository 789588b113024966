"""Logging for ``python -m service``: one JSON object per line (or plain text), each carrying its request id.

Records are stamped with the request id where they are made (a filter reading the ContextVar, on the event loop
or in the worker thread that inherited the request's context), then handed through a queue to one writer thread:
the event loop never waits on a slow stderr.
"""

from __future__ import annotations

import atexit
import logging
import sys
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener
from queue import SimpleQueue
from typing import Any, Literal

import orjson

from service.infra.observability import current_request_id

LogFormat = Literal["json", "text"]

# Attributes every LogRecord has; anything else on a record came from `extra=` and goes into the JSON object.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
    "taskName",
}


class RequestIdFilter(logging.Filter):
    """Stamp each record made while a request is handled with that request's id."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add ``record.request_id`` (unless the record brought its own); never drop a record."""
        request_id = current_request_id()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: timestamp, level, logger, message, request_id, the record's extras."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as one line of JSON."""
        document: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES:
                document[key] = value
        if record.exc_info:
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            document["exception"] = record.exc_text
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(document, default=str).decode()


def text_formatter() -> logging.Formatter:
    """``2025-01-01 12:00:00,123 INFO service.access [<request id>] GET /health -> 200 (0.21 ms)``."""
    return logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s", defaults={"request_id": "-"}
    )


class _StampingQueueHandler(QueueHandler):
    """Queue records for the writer thread with their message and traceback rendered now (the args may change)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        """Return the record, ready to be formatted in another thread.

        The stdlib copies the record first; a record is not used again once handled, so this skips the copy
        (it is a third of the cost of an access-log line).
        """
        record.msg = record.getMessage()
        record.args = None
        if record.exc_info:
            record.exc_text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        return record


def configure_logging(log_format: LogFormat, level: str) -> QueueListener:
    """Send every log record (uvicorn's included) to stderr through one writer thread; return its listener."""
    writer = logging.StreamHandler(sys.stderr)
    writer.setFormatter(JsonFormatter() if log_format == "json" else text_formatter())
    records: SimpleQueue[logging.LogRecord] = SimpleQueue()
    front = _StampingQueueHandler(records)
    front.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [front]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn's own handlers would print a second, unstructured copy; its records go through ours instead.
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    listener = QueueListener(records, writer)
    listener.start()
    atexit.register(_stop_once, listener)
    return listener


def _stop_once(listener: QueueListener) -> None:
    """Write out what is queued and end the writer thread, unless that was done already."""
    if getattr(listener, "_thread", None) is not None:
        listener.stop()
