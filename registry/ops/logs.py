"""Log output: one JSON object per line on stderr (LOG_FORMAT=json, the default) or
plain text, with the request id on every line.

``configure`` owns the root logger's one handler, so records from the app, Eve,
pymongo and RQ come out the same way (deploy/gunicorn.conf.py formats
gunicorn's own lines with the same keys). Calling it again replaces the
handler rather than adding a second one.
"""

from __future__ import annotations

import logging
import sys
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

from pythonjsonlogger.json import JsonFormatter

from registry.ops.request_ids import RequestIdFilter

FIELDS = ["levelname", "name", "message", "request_id", "process"]
RENAMED = {"levelname": "level", "name": "logger"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d %(request_id)s] %(message)s"
HANDLER_NAME = "registry"


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is logged (a test runner or
    a daemonising wrapper may replace it after start-up)."""

    @property
    def stream(self) -> IO[str]:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        # "time": ISO 8601 in UTC; extra={...} fields become keys
        return JsonFormatter(FIELDS, rename_fields=RENAMED, timestamp="time")
    if log_format == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise ValueError(f"LOG_FORMAT must be json or text, not {log_format!r}")


def configure(log_format: str = "json", level: str = "INFO", stream: IO[str] | None = None) -> logging.Handler:
    """One handler on the root logger: ``log_format`` lines with request ids."""
    handler = logging.StreamHandler(stream) if stream else StderrHandler()
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # the app writes one access line per request (registry.api.observability); werkzeug's
    # own (python run.py serve) would be a second
    logging.getLogger("werkzeug").setLevel(max(logging.WARNING, root.level))
    return handler


def configure_for(config: dict[str, Any]) -> None:
    """LOG_FORMAT / LOG_LEVEL of the app's settings; tests keep pytest's logging."""
    if not config.get("TESTING"):
        configure(config["LOG_FORMAT"], config["LOG_LEVEL"])


def redacted(url: str) -> str:
    """``url`` without its password, for a log line or a banner."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
