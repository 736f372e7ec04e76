"""Request ids: one per request, in every log line of it, on the jobs it queues
and on the API calls the bridge makes.

An incoming ``X-Request-ID`` is kept when it is well-formed (a proxy or a
client correlating its own calls), otherwise a fresh one is made; either way
it goes back in the response header. The id lives in a context variable, so
code far from the request (a job's record, a log filter, the bridge's HTTP
client) reads it without being handed it.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid

HEADER = "X-Request-ID"
# letters, digits and a few separators: a UUID, a trace id, "caddy-1234"; never a
# newline or a quote that could forge a log line
WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def new() -> str:
    return uuid.uuid4().hex


def accept(offered: str | None) -> str:
    """The offered id if it is well-formed, else a fresh one."""
    if offered and WELL_FORMED.fullmatch(offered):
        return offered
    return new()


def current() -> str | None:
    """The id of the request (or job) this code runs for, if any."""
    return _current.get()


def outgoing() -> str:
    """The id to send with a call to another service: the current one, or a fresh one."""
    return _current.get() or new()


def bind(request_id: str | None) -> contextvars.Token:
    """Make ``request_id`` current until :func:`unbind` with the returned token."""
    return _current.set(request_id)


def unbind(token: contextvars.Token) -> None:
    _current.reset(token)


class RequestIdFilter(logging.Filter):
    """Puts ``request_id`` on every record (None outside a request), for the formatter."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = _current.get()
        return True
