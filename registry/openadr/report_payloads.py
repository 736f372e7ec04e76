"""The shape of a VEN's report messages: where the readings and their sources are,
and whether a RealPower description names a unit this VTN can convert to kW."""

from __future__ import annotations

from . import mapping
from .answers import REPORT_NOT_SUPPORTED, Declined


def check_units(descriptions: list[dict]) -> None:
    """A RealPower description whose unit is not power refuses the whole registration."""
    for description in descriptions:
        measurement = description.get("measurement") or {}
        if (
            mapping.is_power(measurement)
            and mapping.kilowatt_factor(measurement.get("unit"), measurement.get("scale")) is None
        ):
            raise Declined(
                REPORT_NOT_SUPPORTED,
                f"rID {description.get('r_id')}: RealPower in "
                f"{measurement.get('unit')!r} (siScaleCode {measurement.get('scale')!r}) "
                "cannot be converted to kW; this VTN takes W, J/s, kW or MW with an "
                "siScaleCode",
            )


def payloads_of(interval: dict) -> list[dict]:
    found = interval.get("report_payload")
    if isinstance(found, list):
        return [p for p in found if isinstance(p, dict)]
    return [found] if isinstance(found, dict) else []


def source_of(description: dict) -> str | None:
    source = description.get("report_data_source")
    resource = source.get("resource_id") if isinstance(source, dict) else None
    return str(resource) if resource not in (None, "") else None
