"""The hub's log lines: text for a person at a terminal, or one JSON object a line for a log
collector (``FEDPARK_LOG_FORMAT=json``), each with the id of the request it was written in.

The request id is the one the hub answers in ``X-Request-ID`` and records in the audit log:
an operator goes from a client's error (its problem details carry it) to the log lines and
the audit record of the same request.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

# Set by the audit middleware for each request; threads it hands work to inherit it.
REQUEST_ID: ContextVar[str | None] = ContextVar("fedpark_request_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, message, request_id when in a
    request, and the traceback where the text format would print one."""

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, object] = {
            "time": at.isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()  # formatted in the thread and context that logged
        if request_id:
            line["request_id"] = request_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(level: str, form: str) -> None:
    """The root logger's one handler (stderr), in ``form``: ``text`` or ``json``."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if form == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
