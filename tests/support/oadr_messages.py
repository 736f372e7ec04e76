"""OpenADR 2.0b messages written by hand from the profile, not through openleadr.

Each builder returns the text of one ``oadrPayload`` (registration, report
registration and readings, polls, event answers, cancellations), with the
optional elements a test may leave out; :class:`tests.support.raw_ven.RawVen`
POSTs them as a gateway from another vendor would."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

NS = {
    "oadr": "http://openadr.org/oadr-2.0b/2012/07",
    "ei": "http://docs.oasis-open.org/ns/energyinterop/201110",
    "pyld": "http://docs.oasis-open.org/ns/energyinterop/201110/payloads",
}


XMLNS = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in NS.items())


TIME_NS = 'xmlns:xcal="urn:ietf:params:xml:ns:icalendar-2.0" xmlns:strm="urn:ietf:params:xml:ns:icalendar-2.0:stream"'


POWER_NS = (
    'xmlns:emix="http://docs.oasis-open.org/ns/emix/2011/06" '
    'xmlns:power="http://docs.oasis-open.org/ns/emix/2011/06/power" '
    'xmlns:scale="http://docs.oasis-open.org/ns/emix/2011/06/siscale"'
)


XML_HEADERS = {"Content-Type": "application/xml"}


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id() -> str:
    return str(uuid.uuid4())


def envelope(body: str) -> str:
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<oadr:oadrPayload {XMLNS}>'
        f'<oadr:oadrSignedObject oadr:Id="oadrSignedObject">{body}</oadr:oadrSignedObject>'
        f"</oadr:oadrPayload>"
    )


def ven_id_element(ven_id: str | None) -> str:
    return f"<ei:venID>{ven_id}</ei:venID>" if ven_id else ""


def query_registration(request_id: str | None = None) -> str:
    return envelope(
        '<oadr:oadrQueryRegistration ei:schemaVersion="2.0b">'
        f"<pyld:requestID>{request_id or new_id()}</pyld:requestID>"
        "</oadr:oadrQueryRegistration>"
    )


def create_party_registration(
    ven_name: str | None,
    ven_id: str | None = None,
    *,
    pull: bool | None = True,
    transport_address: str | None = "",
    request_id: str | None = None,
) -> str:
    """``ven_name`` None leaves oadrVenName out; ``pull`` None leaves oadrHttpPullModel
    out; ``transport_address`` None leaves oadrTransportAddress out."""
    address = (
        ""
        if transport_address is None
        else f"<oadr:oadrTransportAddress>{transport_address}</oadr:oadrTransportAddress>"
    )
    name = "" if ven_name is None else f"<oadr:oadrVenName>{ven_name}</oadr:oadrVenName>"
    pull_model = "" if pull is None else f"<oadr:oadrHttpPullModel>{str(pull).lower()}</oadr:oadrHttpPullModel>"
    return envelope(
        '<oadr:oadrCreatePartyRegistration ei:schemaVersion="2.0b">'
        f"<pyld:requestID>{request_id or new_id()}</pyld:requestID>{ven_id_element(ven_id)}"
        "<oadr:oadrProfileName>2.0b</oadr:oadrProfileName>"
        f"<oadr:oadrTransportName>simpleHttp</oadr:oadrTransportName>{address}"
        "<oadr:oadrReportOnly>false</oadr:oadrReportOnly>"
        f"<oadr:oadrXmlSignature>false</oadr:oadrXmlSignature>{name}{pull_model}"
        "</oadr:oadrCreatePartyRegistration>"
    )


def power_description(
    resource_id: str,
    r_id: str,
    *,
    units: str = "W",
    scale: str = "none",
    item: str = "powerReal",
    description: str = "RealPower",
) -> str:
    """One ``oadrReportDescription`` of a METADATA_TELEMETRY_USAGE report.

    ``item`` "powerReal" (units W or J/s, as the XSD fixes them) or "customUnit"
    (any units); any other power or energy item of the EMIX schema works too.
    """
    if item == "customUnit":
        measurement = (
            f"<oadr:customUnit><oadr:itemDescription>{description}</oadr:itemDescription>"
            f"<oadr:itemUnits>{units}</oadr:itemUnits>"
            f"<scale:siScaleCode>{scale}</scale:siScaleCode></oadr:customUnit>"
        )
    else:
        attributes = (
            (
                "<power:powerAttributes><power:hertz>50</power:hertz>"
                "<power:voltage>230</power:voltage><power:ac>true</power:ac>"
                "</power:powerAttributes>"
            )
            if item.startswith("power")
            else ""
        )
        measurement = (
            f"<power:{item}><power:itemDescription>{description}</power:itemDescription>"
            f"<power:itemUnits>{units}</power:itemUnits>"
            f"<scale:siScaleCode>{scale}</scale:siScaleCode>{attributes}</power:{item}>"
        )
    return (
        f"<oadr:oadrReportDescription {POWER_NS}>"
        f"<ei:rID>{r_id}</ei:rID>"
        f"<ei:reportDataSource><ei:resourceID>{resource_id}</ei:resourceID></ei:reportDataSource>"
        f"<ei:reportType>usage</ei:reportType>{measurement}"
        "<ei:readingType>Direct Read</ei:readingType>"
        "<oadr:oadrSamplingRate><oadr:oadrMinPeriod>PT10S</oadr:oadrMinPeriod>"
        "<oadr:oadrMaxPeriod>PT1H</oadr:oadrMaxPeriod><oadr:oadrOnChange>false</oadr:oadrOnChange>"
        "</oadr:oadrSamplingRate></oadr:oadrReportDescription>"
    )


def register_report(ven_id: str | None, resource_id: str, r_id: str, **unit: str) -> str:
    """A METADATA_TELEMETRY_USAGE report: one real power reading of one resource."""
    return register_reports(ven_id, [power_description(resource_id, r_id, **unit)])


def register_reports(ven_id: str | None, descriptions: Iterable[str], request_id: str | None = None) -> str:
    """One METADATA_TELEMETRY_USAGE report with the given report descriptions."""
    return envelope(
        '<oadr:oadrRegisterReport ei:schemaVersion="2.0b">'
        f"<pyld:requestID>{request_id or new_id()}</pyld:requestID>"
        f"<oadr:oadrReport {TIME_NS}>"
        "<xcal:duration><xcal:duration>PT1H</xcal:duration></xcal:duration>"
        f"{''.join(descriptions)}"
        "<ei:reportRequestID>0</ei:reportRequestID>"
        f"<ei:reportSpecifierID>spec-{new_id()}</ei:reportSpecifierID>"
        "<ei:reportName>METADATA_TELEMETRY_USAGE</ei:reportName>"
        f"<ei:createdDateTime>{stamp(now())}</ei:createdDateTime>"
        f"</oadr:oadrReport>{ven_id_element(ven_id)}</oadr:oadrRegisterReport>"
    )


Reading = tuple  # (datetime or its text, value text[, rID])


def update_report(
    ven_id: str | None, report_request_id: str, r_id: str, readings: list[Reading], request_id: str | None = None
) -> str:
    """An oadrUpdateReport; a reading is ``(moment, value)`` or ``(moment, value, rID)``,
    a moment a datetime (written with Z) or the exact text to send."""

    def when(moment: datetime | str) -> str:
        return moment if isinstance(moment, str) else stamp(moment)

    intervals = "".join(
        f"<ei:interval><xcal:dtstart><xcal:date-time>{when(reading[0])}</xcal:date-time></xcal:dtstart>"
        f"<oadr:oadrReportPayload><ei:rID>{reading[2] if len(reading) > 2 else r_id}</ei:rID>"
        f"<ei:payloadFloat><ei:value>{reading[1]}</ei:value></ei:payloadFloat></oadr:oadrReportPayload>"
        "</ei:interval>"
        for reading in readings
    )
    return envelope(
        '<oadr:oadrUpdateReport ei:schemaVersion="2.0b">'
        f"<pyld:requestID>{request_id or new_id()}</pyld:requestID>"
        f"<oadr:oadrReport {TIME_NS}>"
        f"<xcal:dtstart><xcal:date-time>{when(readings[0][0])}</xcal:date-time></xcal:dtstart>"
        f"<strm:intervals>{intervals}</strm:intervals>"
        f"<ei:eiReportID>{new_id()}</ei:eiReportID>"
        f"<ei:reportRequestID>{report_request_id}</ei:reportRequestID>"
        f"<ei:reportSpecifierID>spec-{r_id}</ei:reportSpecifierID>"
        "<ei:reportName>TELEMETRY_USAGE</ei:reportName>"
        f"<ei:createdDateTime>{stamp(now())}</ei:createdDateTime>"
        f"</oadr:oadrReport>{ven_id_element(ven_id)}</oadr:oadrUpdateReport>"
    )


def poll(ven_id: str) -> str:
    return envelope(f'<oadr:oadrPoll ei:schemaVersion="2.0b">{ven_id_element(ven_id)}</oadr:oadrPoll>')


def request_event(ven_id: str) -> str:
    return envelope(
        '<oadr:oadrRequestEvent ei:schemaVersion="2.0b"><pyld:eiRequestEvent>'
        f"<pyld:requestID>{new_id()}</pyld:requestID>{ven_id_element(ven_id)}"
        "</pyld:eiRequestEvent></oadr:oadrRequestEvent>"
    )


def created_event(ven_id: str, event_id: str, opt: str, modification: int = 0) -> str:
    return envelope(
        '<oadr:oadrCreatedEvent ei:schemaVersion="2.0b"><pyld:eiCreatedEvent>'
        "<ei:eiResponse><ei:responseCode>200</ei:responseCode>"
        "<ei:responseDescription>OK</ei:responseDescription><pyld:requestID></pyld:requestID>"
        "</ei:eiResponse><ei:eventResponses><ei:eventResponse>"
        f"<ei:responseCode>200</ei:responseCode><pyld:requestID>{new_id()}</pyld:requestID>"
        f"<ei:qualifiedEventID><ei:eventID>{event_id}</ei:eventID>"
        f"<ei:modificationNumber>{modification}</ei:modificationNumber></ei:qualifiedEventID>"
        f"<ei:optType>{opt}</ei:optType></ei:eventResponse></ei:eventResponses>"
        f"{ven_id_element(ven_id)}</pyld:eiCreatedEvent></oadr:oadrCreatedEvent>"
    )


def cancel_party_registration(ven_id: str | None, registration_id: str, request_id: str | None = None) -> str:
    return envelope(
        '<oadr:oadrCancelPartyRegistration ei:schemaVersion="2.0b">'
        f"<pyld:requestID>{request_id or new_id()}</pyld:requestID>"
        f"<ei:registrationID>{registration_id}</ei:registrationID>{ven_id_element(ven_id)}"
        "</oadr:oadrCancelPartyRegistration>"
    )


def response(ven_id: str) -> str:
    """The oadrResponse a VEN sends to acknowledge, e.g., oadrRequestReregistration."""
    return envelope(
        '<oadr:oadrResponse ei:schemaVersion="2.0b"><ei:eiResponse>'
        "<ei:responseCode>200</ei:responseCode><ei:responseDescription>OK"
        "</ei:responseDescription><pyld:requestID/></ei:eiResponse>"
        f"{ven_id_element(ven_id)}</oadr:oadrResponse>"
    )
