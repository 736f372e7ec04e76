"""What a VTN request must pass before openleadr reads a byte of it, and the one
route handler that answers it.

openleadr validates bodies with a schema-aware lxml parser that resolves
entities; a used internal DTD entity makes it crash the whole process. So every
POST is read here first, in this order, with a clear 4xx at the first failure::

    Content-Type application/xml or text/xml   else 415
    body at most MAX_BODY bytes         else 413 (also chunked: counted while read)
    well-formed XML, hardened parser    else 400 (no DTD loading, no entities,
                                                  no network, no huge trees)
    no DOCTYPE at all                   else 400 (checked on the parsed tree)
    valid OpenADR 2.0b (openleadr XSD)  else 400
    admitted (ven_auth.VenGate)         else 401 / 403 / 503, or an OpenADR answer
                                        with an error code (answers.Declined)
    answered (answers.Responder)        a 2.0b reply; 503 while the registry is
                                        unavailable; never a 500

openleadr then parses the same bytes again, now known to be harmless; the ids
it turned into numbers ("007" -> 7) are put back as the VEN wrote them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from lxml import etree
from openleadr import errors
from openleadr.messaging import XML_SCHEMA, parse_message
from signxml.exceptions import InvalidSignature

from .answers import OTHER_ERROR, Declined, Responder
from .api_client import ApiError

logger = logging.getLogger("registry.openadr")

MAX_BODY = 1024 * 1024  # bytes; OpenADR messages are a few KiB
SHUTDOWN_GRACE = 3.0  # s a stop waits for requests in progress before cancelling them
LINGER = 2.0  # s the server reads (and drops) the rest of a body it refused before answering, not aiohttp's 10
# text/xml is what many gateways send (RFC 7303: the same documents as application/xml)
XML_MEDIA_TYPES = ("application/xml", "text/xml")
EI = "{http://docs.oasis-open.org/ns/energyinterop/201110}"
OADR = "{http://openadr.org/oadr-2.0b/2012/07}"
PYLD = "{http://docs.oasis-open.org/ns/energyinterop/201110/payloads}"

Admit = Callable[[web.Request, str, dict], Awaitable[Any]]


class Refusal(Exception):
    """A request the VTN answers with HTTP ``status`` and a message, before openleadr."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}

    def response(self) -> web.Response:
        return web.Response(status=self.status, text=self.message + "\n", headers=self.headers)


def registry_unavailable() -> Refusal:
    return Refusal(503, "the registry is unavailable; retry later", {"Retry-After": "10"})


def check_content_type(request: web.Request) -> None:
    if "Content-Type" not in request.headers:
        raise Refusal(415, "no Content-Type: send OpenADR messages as application/xml")
    if request.content_type not in XML_MEDIA_TYPES:
        raise Refusal(
            415,
            f"Content-Type {request.content_type} is not accepted: "
            "send OpenADR messages as application/xml (or text/xml)",
        )


async def read_body(request: web.Request) -> bytes:
    """The body, refused past MAX_BODY (the app's ``client_max_size`` counts chunked bodies)."""
    # Connection: close, so the client does not reuse a socket whose unread body
    # aiohttp would otherwise keep draining (its "lingering" read)
    too_large = Refusal(413, f"an OpenADR message may be at most {MAX_BODY} bytes", {"Connection": "close"})
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
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )


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


def read_message(body: bytes, root: etree._Element) -> tuple[str, dict]:
    """openleadr's message type and payload, from a body already parsed and validated."""
    try:
        message_type, payload = parse_message(body)
    except Exception as err:  # a schema-valid body openleadr still cannot read
        raise Refusal(400, f"not a usable OpenADR 2.0b message: {err.__class__.__name__}") from None
    restore_ids(root, payload)
    return message_type, payload


def restore_ids(root: etree._Element, payload: dict) -> None:
    """Ids exactly as written: openleadr turns every numeric text into a number."""
    message = root.find(f"{OADR}oadrSignedObject")[0]
    for key, tag in (
        ("ven_id", f"{EI}venID"),
        ("ven_name", f"{OADR}oadrVenName"),
        ("request_id", f"{PYLD}requestID"),
        ("registration_id", f"{EI}registrationID"),
    ):
        found = message.find(f".//{tag}")
        if key in payload and found is not None and not isinstance(payload[key], (str, type(None))):
            payload[key] = found.text or ""
    reports = message.findall(f"{OADR}oadrReport")
    for report, element in zip(payload.get("reports") or [], reports):
        report["report_request_id"] = element.findtext(f"{EI}reportRequestID")
        report["report_specifier_id"] = element.findtext(f"{EI}reportSpecifierID")
        rids = [e.text for e in element.iter(f"{EI}rID")]
        readings = [
            *(report.get("report_descriptions") or []),
            *((interval.get("report_payload") or {}) for interval in report.get("intervals") or []),
        ]
        if len(rids) == len(readings):
            for reading, r_id in zip(readings, rids):
                if isinstance(reading, dict) and "r_id" in reading:
                    reading["r_id"] = r_id
    for response, element in zip(payload.get("event_responses") or [], message.iter(f"{EI}eventID")):
        response["event_id"] = element.text


async def inspect(request: web.Request) -> tuple[str, dict, etree._Element]:
    """Every check up to the schema; the message's type, payload and tree."""
    check_content_type(request)
    body = await read_body(request)
    root = parse_xml(body)
    check_schema(root)
    return (*read_message(body, root), root)


def serve(service: Any, admit: Admit, responder: Responder) -> Callable:
    """The route handler of one openleadr service: :func:`inspect`, ``admit``, then the answer."""

    async def handle(request: web.Request) -> web.StreamResponse:
        message_type, payload = "", {}
        try:
            message_type, payload, root = await inspect(request)
            await admit(request, message_type, payload)
            return await responder.respond(request, service, message_type, payload, root)
        except Refusal as refusal:
            logger.warning(
                "VTN refused a message from %s to %s: %s %s",
                request.remote,
                request.path,
                refusal.status,
                refusal.message,
            )
            return refusal.response()
        except errors.ProtocolError as err:  # raised by one of openleadr's own handlers
            declined = Declined(err.response_code, err.response_description)
        except Declined as err:
            declined = err
        except InvalidSignature:
            return Refusal(403, "the message's XML signature is not valid").response()
        except ApiError as err:
            logger.warning("VTN: the registry failed a %s from %s: %s", message_type, request.remote, err)
            return registry_unavailable().response()
        except Exception:  # a bug must not become a 500 (nor take the VTN down)
            logger.exception("VTN: a %s from %s could not be handled", message_type or "message", request.remote)
            declined = Declined(OTHER_ERROR, "the VTN could not process this message")
        logger.warning(
            "VTN answered %s from %s with %s: %s", message_type, request.remote, declined.code, declined.description
        )
        try:
            return responder.declined(message_type, payload, declined)
        except Exception:
            logger.exception("VTN: no OpenADR answer could be written for a %s", message_type)
            return Refusal(400, f"{declined.code}: {declined.description}").response()

    return handle


def install(server: Any, admit: Admit, responder: Responder) -> None:
    """Serve ``server``'s OpenADR services from an app with the body limit and these checks.

    openleadr builds a bare ``web.Application`` in ``OpenADRServer.__init__``;
    its routes are rebuilt here on one with ``client_max_size``, each served by
    :func:`serve` instead of openleadr's ``VTNService.handler``.
    """
    app = web.Application(client_max_size=MAX_BODY + 1)
    app.add_routes(
        [
            web.post(f"{server.http_path_prefix}/{service.__service_name__}", serve(service, admit, responder))
            for service in server.services.values()
        ]
    )
    server.app = app


async def listen(server: Any) -> None:
    """openleadr's ``OpenADRServer.run`` with a bounded shutdown: its runner waits up
    to 60 s for a request in progress (a client that declared a large body and stalls
    keeps one open), so a stop could hang that long; here it waits SHUTDOWN_GRACE s,
    then cancels, and a refused body is drained for LINGER s at most.
    ``server.stop`` cleans this runner up."""
    server.app_runner = web.AppRunner(server.app, shutdown_timeout=SHUTDOWN_GRACE, lingering_time=LINGER)
    await server.app_runner.setup()
    site = web.TCPSite(server.app_runner, host=server.http_host, port=server.http_port, ssl_context=server.ssl_context)
    await site.start()
