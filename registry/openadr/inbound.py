"""What a VTN request must pass before openleadr reads a byte of it.

openleadr validates bodies with a schema-aware lxml parser that resolves
entities; a used internal DTD entity makes it crash the whole process. So an
aiohttp middleware reads every POST first, in this order, and answers with a
clear 4xx at the first failure::

    Content-Type application/xml        else 415
    body at most MAX_BODY bytes         else 413 (also chunked: counted while read)
    well-formed XML, hardened parser    else 400 (no DTD loading, no entities,
                                                  no network, no huge trees)
    no DOCTYPE at all                   else 400 (checked on the parsed tree)
    valid OpenADR 2.0b (openleadr XSD)  else 400
    admitted (ven_auth.VenGate)         else 401 / 403 / 503
    openleadr                           a 5xx from it becomes 400, or 503 when
                                        the registry was unavailable

openleadr then parses the same bytes again, now known to be harmless.
"""
from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from aiohttp import web
from lxml import etree
from openleadr.messaging import XML_SCHEMA, parse_message

logger = logging.getLogger("registry.openadr")

MAX_BODY = 1024 * 1024  # bytes; OpenADR messages are a few KiB
XML_MEDIA_TYPE = "application/xml"

Admit = Callable[[web.Request, str, dict], Awaitable[Any]]


class Refusal(Exception):
    """A request the VTN answers with ``status`` and a message, before openleadr."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}

    def response(self) -> web.Response:
        return web.Response(status=self.status, text=self.message + "\n", headers=self.headers)


@dataclass
class Outcome:
    """What went wrong inside openleadr's handling, for the answer that replaces its 500."""

    registry_errors: list[str] = field(default_factory=list)

    def refusal(self) -> Refusal:
        if self.registry_errors:
            return Refusal(503, "the registry is unavailable; retry later",
                           {"Retry-After": "10"})
        return Refusal(400, "the VTN could not process this message")


_OUTCOME: ContextVar[Outcome] = ContextVar("vtn_request_outcome")


def note_registry_error(error: Exception) -> None:
    """Called by handlers when the registry failed them: the VEN gets 503, not 400."""
    outcome = _OUTCOME.get(None)
    if outcome is not None:
        outcome.registry_errors.append(str(error))


def check_content_type(request: web.Request) -> None:
    if "Content-Type" not in request.headers:
        raise Refusal(415, f"no Content-Type: send OpenADR messages as {XML_MEDIA_TYPE}")
    if request.content_type != XML_MEDIA_TYPE:
        raise Refusal(415, f"Content-Type {request.content_type} is not accepted: "
                           f"send OpenADR messages as {XML_MEDIA_TYPE}")


async def read_body(request: web.Request) -> bytes:
    """The body, refused past MAX_BODY (the app's ``client_max_size`` counts chunked bodies)."""
    too_large = Refusal(413, f"an OpenADR message may be at most {MAX_BODY} bytes")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise too_large
    try:
        body = await request.read()  # cached: openleadr's own read() gets the same bytes
    except web.HTTPRequestEntityTooLarge:
        raise too_large from None
    if len(body) > MAX_BODY:  # aiohttp stops reading just past client_max_size
        raise too_large
    return body


def hardened_parser() -> etree.XMLParser:
    """A fresh parser per message (lxml parsers are not shared across threads)."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, huge_tree=False)


def parse_xml(body: bytes) -> etree._Element:
    """The document tree, refused when malformed or when it has any DOCTYPE."""
    if not body.strip():
        raise Refusal(400, "empty body: send an OpenADR 2.0b message")
    try:
        root = etree.fromstring(body, hardened_parser())
    except (etree.XMLSyntaxError, ValueError) as err:
        raise Refusal(400, f"not well-formed XML: {err}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise Refusal(400, "a DOCTYPE is not allowed in OpenADR messages")
    return root


def check_schema(root: etree._Element) -> None:
    if not XML_SCHEMA.validate(root):
        error = XML_SCHEMA.error_log.last_error
        raise Refusal(400, f"not a valid OpenADR 2.0b message: line {error.line}: {error.message}")


def read_message(body: bytes) -> tuple[str, dict]:
    """openleadr's message type and payload, from a body already parsed and validated."""
    try:
        return parse_message(body)
    except Exception as err:  # a schema-valid body openleadr still cannot read
        raise Refusal(400, f"not a usable OpenADR 2.0b message: {err.__class__.__name__}") from None


async def inspect(request: web.Request) -> tuple[str, dict]:
    """Every check up to the schema; the message's type and payload."""
    check_content_type(request)
    body = await read_body(request)
    check_schema(parse_xml(body))
    return read_message(body)


def guard(admit: Admit) -> Callable:
    """The middleware: :func:`inspect`, then ``admit(request, type, payload)``, then openleadr."""

    @web.middleware
    async def guard_vtn_request(request: web.Request, handler: Callable) -> web.StreamResponse:
        if request.match_info.http_exception is not None:
            return await handler(request)  # the router's own 404 / 405
        outcome = Outcome()
        token = _OUTCOME.set(outcome)
        try:
            message_type, payload = await inspect(request)
            await admit(request, message_type, payload)
            response = await handler(request)
        except Refusal as refusal:
            logger.warning("VTN refused a message from %s to %s: %s %s", request.remote,
                           request.path, refusal.status, refusal.message)
            return refusal.response()
        except web.HTTPException:
            raise
        except Exception:  # openleadr lets some errors escape its own handler
            logger.exception("VTN: a message from %s could not be handled", request.remote)
            response = web.Response(status=500)
        finally:
            _OUTCOME.reset(token)
        if response.status >= 500:
            refusal = outcome.refusal()
            logger.warning("VTN answered %s instead of openleadr's %s to %s: %s", refusal.status,
                           response.status, request.remote, outcome.registry_errors or "")
            return refusal.response()
        return response

    return guard_vtn_request


def install(server: Any, admit: Admit) -> None:
    """Serve ``server``'s OpenADR services from an app with the guard and the body limit.

    openleadr builds a bare ``web.Application`` in ``OpenADRServer.__init__``;
    its routes are rebuilt here on one with ``client_max_size`` and the guard.
    """
    app = web.Application(client_max_size=MAX_BODY + 1, middlewares=[guard(admit)])
    app.add_routes([web.post(f"{server.http_path_prefix}/{service.__service_name__}", service.handler)
                    for service in server.services.values()])
    server.app = app
