"""The VENs' reports: which readings this VTN requested, and the readings that come in::

    oadrRegisterReport ─▶ register: every RealPower description must have a power unit
                          (W, J/s, kW, MW with an siScaleCode) or 461, nothing stored;
                          the resources' devices in one batch (devices.ensure_devices);
                          one reportRequest per report with the RealPower rIDs of bridged
                          devices ◀─ oadrRegisteredReport, whose description names what
                          was not requested and why
    oadrUpdateReport ───▶ update: each reportRequestID must be one requested from this VEN
                          (else 452) and every dtstart UTC and near now (else 454): nothing
                          of such a message is stored; readings of rIDs not requested and
                          values that are not finite power in range are dropped, logged
                          and counted; the rest go to the measurement buffer
                          ◀─ oadrUpdatedReport, whose description says what was dropped;
                          a full buffer refuses the whole message (469, nothing taken;
                          the VEN sends it again later)

Dropped and refused readings are counted in
``der_registry_openadr_readings_refused_total{reason}`` (prometheus_client, the
registry's own collector registry; the VTN serves it at ``/metrics``).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from openleadr import objects, utils
from prometheus_client import Counter

from registry.ops.metrics import PROCESS

from . import mapping
from .answers import INVALID_DATA, INVALID_ID, OTHER_ERROR, Declined, text
from .api_client import ApiClient
from .devices import ensure_devices
from .report_payloads import check_units, payloads_of, source_of
from .telemetry import BufferFull, MeasurementBuffer
from .ven_auth import VenSession

logger = logging.getLogger("registry.openadr")

READINGS_REFUSED = Counter(
    "der_registry_openadr_readings_refused",
    "Readings a VEN sent that were not stored, by reason "
    "(unknown_report_request, unknown_rid, bad_time, bad_value, buffer_full)",
    ["reason"],
    registry=PROCESS,
)
TELEMETRY_REPORTS = frozenset({"METADATA_TELEMETRY_USAGE", "METADATA_TELEMETRY_STATUS"})
SPECIFIERS_PER_VEN = 100  # report registrations kept per VEN (the oldest forgotten)
NOTES_SHOWN = 5


@dataclass(frozen=True)
class Wanted:
    """A reading this VTN asked for: the device it lands on and its factor to kW."""

    device_id: str
    factor: float


class Reports:
    """Report registrations and updates of the VENs in ``sessions``."""

    def __init__(
        self,
        api: ApiClient,
        sessions: Mapping[str, VenSession],
        buffer: MeasurementBuffer,
        sampling_interval: timedelta,
    ) -> None:
        self.api, self.sessions, self.buffer = api, sessions, buffer
        self.sampling_interval = sampling_interval
        # ven_id -> reportSpecifierID -> (reportRequestID, {rID: Wanted}); a re-registered
        # specifier replaces its request
        self.requested: dict[str, OrderedDict[str, tuple[str, dict[str, Wanted]]]] = {}

    def wanted(self, ven_id: str, report_request_id: Any) -> dict[str, Wanted] | None:
        for request_id, readings in self.requested.get(ven_id, {}).values():
            if request_id == report_request_id:
                return readings
        return None

    def forget(self, ven_id: str) -> None:
        self.requested.pop(ven_id, None)

    # -- oadrRegisterReport ----------------------------------------------------

    async def register(self, payload: dict) -> tuple[str, dict]:
        session = self.sessions[payload["ven_id"]]
        reports = payload.get("reports") or []
        telemetry = [r for r in reports if r.get("report_name") in TELEMETRY_REPORTS]
        descriptions = [d for r in telemetry for d in r.get("report_descriptions") or []]
        check_units(descriptions)
        devices = await self._devices(session, descriptions)
        requests, notes = (
            [],
            [
                f"{r.get('report_name')} is not requested"
                for r in reports
                if r.get("report_name") not in TELEMETRY_REPORTS
            ],
        )
        for report in telemetry:
            wanted, granularity = self._wanted(report, devices, notes)
            if wanted:
                requests.append(self._request(session.ven_id, report, wanted, granularity))
        requested = sum(len(r.report_specifier.specifier_payloads) for r in requests)
        return "oadrRegisteredReport", {
            "report_requests": requests,
            "response": {
                "response_code": 200,
                "response_description": summary(f"OK: {requested} reading(s) requested", "not requested", notes),
            },
        }

    async def _devices(self, session: VenSession, descriptions: list[dict]) -> dict[str, str | None]:
        resources = {source_of(d) for d in descriptions} - {None}
        unknown = sorted(resources - set(session.devices))
        session.devices.update(await ensure_devices(self.api, session.enrolment, session.ven_id, unknown))
        return session.devices

    def _wanted(
        self, report: dict, devices: Mapping[str, str | None], notes: list[str]
    ) -> tuple[dict[str, tuple[Wanted, dict]], timedelta]:
        wanted, intervals = {}, []
        for description in report.get("report_descriptions") or []:
            r_id, resource = description.get("r_id"), source_of(description)
            measurement = description.get("measurement") or {}
            if not mapping.is_power(measurement):
                notes.append(
                    f"rID {r_id}: {measurement.get('description') or 'this reading'} is not stored (RealPower only)"
                )
            elif resource is None or devices.get(resource) is None:
                notes.append(
                    f"rID {r_id}: " + ("no resourceID" if resource is None else f"resource {resource} is not bridged")
                )
            else:
                factor = mapping.kilowatt_factor(measurement.get("unit"), measurement.get("scale"))
                wanted[r_id] = (Wanted(devices[resource], factor), description)
                rate = description.get("sampling_rate") or {}
                intervals.append(
                    mapping.clamp_interval(self.sampling_interval, rate.get("min_period"), rate.get("max_period"))
                )
        return wanted, min(intervals, default=self.sampling_interval)

    def _request(
        self, ven_id: str, report: dict, wanted: dict[str, tuple[Wanted, dict]], granularity: timedelta
    ) -> objects.ReportRequest:
        request_id, specifier_id = utils.generate_id(), report.get("report_specifier_id")
        book = self.requested.setdefault(ven_id, OrderedDict())
        book.pop(specifier_id, None)
        book[specifier_id] = (request_id, {r_id: target for r_id, (target, _) in wanted.items()})
        while len(book) > SPECIFIERS_PER_VEN:
            book.popitem(last=False)
        payloads = [
            objects.SpecifierPayload(
                r_id=text(r_id), reading_type=text(description.get("reading_type") or "Direct Read")
            )
            for r_id, (_, description) in wanted.items()
        ]
        return objects.ReportRequest(
            request_id,
            objects.ReportSpecifier(
                report_specifier_id=text(specifier_id),
                granularity=granularity,
                report_back_duration=granularity,
                specifier_payloads=payloads,
            ),
        )

    # -- oadrUpdateReport ------------------------------------------------------

    async def update(self, payload: dict) -> tuple[str, dict]:
        ven_id, now = payload["ven_id"], datetime.now(UTC)
        readings: dict[Wanted, list[tuple[datetime, Any]]] = {}
        unknown: dict[str, int] = {}
        for report in payload.get("reports") or []:
            wanted = self._requested_by(ven_id, report)
            for interval in report.get("intervals") or []:
                moment = checked_time(interval, now, payload)
                for reading in payloads_of(interval):
                    target = wanted.get(reading.get("r_id"))
                    if target is None:
                        unknown[str(reading.get("r_id"))] = unknown.get(str(reading.get("r_id")), 0) + 1
                    else:
                        readings.setdefault(target, []).append((moment, reading.get("value")))
        accepted, notes = self._buffer(readings), []
        if unknown:
            READINGS_REFUSED.labels("unknown_rid").inc(sum(unknown.values()))
            logger.warning(
                "VEN %s: %d reading(s) of rIDs that were not requested dropped: %s",
                ven_id,
                sum(unknown.values()),
                sorted(unknown)[:NOTES_SHOWN],
            )
            notes += [f"{count} of rID {r_id} (not requested)" for r_id, count in unknown.items()]
        dropped = sum(len(v) for v in readings.values()) - accepted
        if dropped:
            notes.append(f"{dropped} not a finite power within ±{mapping.MAX_POWER_KW:g} kW")
        return "oadrUpdatedReport", {
            "response": {
                "response_code": 200,
                "response_description": summary(f"OK: {accepted} reading(s) accepted", "dropped", notes),
            }
        }

    def _requested_by(self, ven_id: str, report: dict) -> dict[str, Wanted]:
        wanted = self.wanted(ven_id, report.get("report_request_id"))
        if wanted is None:
            count = sum(len(payloads_of(i)) for i in report.get("intervals") or [])
            READINGS_REFUSED.labels("unknown_report_request").inc(count)
            logger.warning(
                "VEN %s: reportRequestID %s was not requested from it; %d reading(s) refused",
                ven_id,
                report.get("report_request_id"),
                count,
            )
            raise Declined(
                INVALID_ID,
                f"reportRequestID {report.get('report_request_id')} was "
                "not requested from this VEN (register its reports again)",
            )
        return wanted

    def _buffer(self, readings: dict[Wanted, list[tuple[datetime, Any]]]) -> int:
        """Convert every reading, then hand them to the buffer together: all taken or
        (buffer full) none, refused at the VTN with 469 so the VEN keeps them."""
        accepted: list[dict] = []
        for target, values in readings.items():
            documents, refused = mapping.power_measurements(target.device_id, values, target.factor)
            if refused:
                READINGS_REFUSED.labels("bad_value").inc(len(refused))
                logger.warning(
                    "dropped %d reading(s) for device %s: not a finite power within ±%g kW at a timestamp: %r",
                    len(refused),
                    target.device_id,
                    mapping.MAX_POWER_KW,
                    refused[:NOTES_SHOWN],
                )
            accepted += documents
        try:
            self.buffer.add(accepted)
        except BufferFull as err:
            READINGS_REFUSED.labels("buffer_full").inc(len(accepted))
            logger.warning("%d reading(s) refused at the VTN: %s", len(accepted), err)
            raise Declined(OTHER_ERROR, f"readings not taken, send them again later: {err}") from None
        return len(accepted)


def checked_time(interval: dict, now: datetime, payload: dict) -> datetime:
    """The interval's dtstart, or the whole message is refused (454) and counted."""
    try:
        if interval.get("dtstart") is None:
            raise ValueError("an interval has no dtstart")
        return mapping.reading_time(interval["dtstart"], now)
    except ValueError as err:
        count = sum(len(payloads_of(i)) for r in payload.get("reports") or [] for i in r.get("intervals") or [])
        READINGS_REFUSED.labels("bad_time").inc(count)
        raise Declined(INVALID_DATA, f"{err}; nothing of this report was stored") from None


def summary(head: str, label: str, notes: list[str]) -> str:
    if not notes:
        return head
    more = f" (and {len(notes) - NOTES_SHOWN} more)" if len(notes) > NOTES_SHOWN else ""
    return f"{head}; {label}: {'; '.join(notes[:NOTES_SHOWN])}{more}"
