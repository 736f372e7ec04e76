"""A VEN that writes raw OpenADR 2.0b XML, from the profile, not through openleadr.

The messages come from :mod:`tests.support.oadr_messages`; :class:`RawVen`
POSTs them with ``requests`` and HTTP Basic ``ven_name:secret``, as a gateway
from another vendor would. :func:`valid_answer` checks that what the VTN says
is 2.0b: every answer it returns has been validated against the XSD openleadr
ships, and never contains the literal text ``None``."""

from __future__ import annotations

import requests
from lxml import etree
from openleadr.messaging import XML_SCHEMA

from registry.openadr.inbound import hardened_parser
from tests.support.oadr_messages import NS, XML_HEADERS, create_party_registration, query_registration, register_report


def valid_answer(answer: requests.Response) -> etree._Element:
    """A 200 answer of the VTN: XML that validates against the 2.0b schema, with no
    literal ``None`` where an id belongs."""
    assert answer.status_code == 200, (answer.status_code, answer.text)
    root = etree.fromstring(answer.content, hardened_parser())
    assert XML_SCHEMA.validate(root), (XML_SCHEMA.error_log.last_error, answer.text)
    assert ">None<" not in answer.text, answer.text
    return root


def text_of(root: etree._Element, path: str) -> str | None:
    found = root.find(path, NS)
    return found.text if found is not None else None


def message_type(root: etree._Element) -> str:
    """The local name of the message inside oadrSignedObject, e.g. ``oadrResponse``."""
    signed = root.find("oadr:oadrSignedObject", NS)
    return etree.QName(signed[0]).localname


def outcome(root: etree._Element) -> tuple[int, str]:
    """The answer's eiResponse: ``(responseCode, responseDescription)``."""
    code = text_of(root, ".//ei:eiResponse/ei:responseCode")
    return int(code), text_of(root, ".//ei:eiResponse/ei:responseDescription") or ""


class RawVen:
    """Posts hand-written messages to the VTN with HTTP Basic ``name:secret``."""

    def __init__(self, vtn_url: str, name: str, secret: str | None) -> None:
        self.url, self.name = vtn_url, name
        self.session = requests.Session()
        if secret is not None:
            self.session.auth = (name, secret)
        self.ven_id: str | None = None
        self.registration_id: str | None = None

    def post(self, service: str, body: str | bytes, **headers: str) -> requests.Response:
        return self.session.post(f"{self.url}/{service}", data=body, timeout=30, headers={**XML_HEADERS, **headers})

    def register(self) -> RawVen:
        valid_answer(self.post("EiRegisterParty", query_registration()))
        answer = valid_answer(self.post("EiRegisterParty", create_party_registration(self.name)))
        assert outcome(answer)[0] == 200, outcome(answer)
        self.ven_id = text_of(answer, ".//ei:venID")
        self.registration_id = text_of(answer, ".//ei:registrationID")
        assert self.ven_id and self.registration_id, etree.tostring(answer)
        return self

    def register_report(self, resource_id: str, r_id: str, **unit: str) -> str:
        """The reportRequestID the VTN answers with for this resource's readings."""
        answer = valid_answer(self.post("EiReport", register_report(self.ven_id, resource_id, r_id, **unit)))
        report_request_id = text_of(answer, ".//ei:reportRequestID")
        assert report_request_id, etree.tostring(answer)
        return report_request_id


def declined(answer: requests.Response, code: int, reply_type: str | None = None) -> str:
    """An answer in OpenADR terms with this error code (HTTP 200, valid 2.0b); its description."""
    root = valid_answer(answer)
    got, description = outcome(root)
    assert got == code, (got, description, answer.text)
    if reply_type is not None:
        assert message_type(root) == reply_type, answer.text
    return description
