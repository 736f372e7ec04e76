"""From the UI's filter forms to API query parameters, and back to what a
person reads. Pure functions: no request, no store."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.vocabulary import AVAILABILITY_FIELDS, DATE_FORMAT, DEVICE_CLASSES, DEVICE_TYPES, EARTH_RADIUS_KM

DEVICE_SORTS = {
    "name": "device_name",
    "-capacity": "-max_capacity",
    "capacity": "max_capacity",
    "-available": "-available_capacity",
    "class": "device_class,device_name",
}
PAGE_SIZES = (10, 25, 50, 100)
MAX_PAGE = 10**6
# ASCII digits only: str.isdigit() also accepts "²", which int() refuses
_WHOLE = re.compile(r"[0-9]{1,7}")


class InvalidPage(ValueError):
    """A ``page`` parameter that is not a page number (the view answers 400)."""


class PageOutOfRange(LookupError):
    """A page after the last one (the view answers 404)."""


@dataclass(frozen=True)
class DeviceQuery:
    """The devices panel's API parameters and any input it had to ignore."""

    params: dict[str, Any]
    page: int
    per_page: int
    problems: tuple[str, ...] = ()


def device_query(args: Mapping[str, str]) -> DeviceQuery:
    """``where`` / ``sort`` / paging for GET /devices from the filter form."""
    where: dict[str, Any] = {}
    problems: list[str] = []
    if args.get("device_class") in DEVICE_CLASSES:
        where["device_class"] = args["device_class"]
    if args.get("device_type") in DEVICE_TYPES:
        where["device_type"] = args["device_type"]
    for name in AVAILABILITY_FIELDS:
        if args.get(name) in ("yes", "no"):
            where[name] = args[name]
    capacity = {
        op: value
        for op, key in (("$gte", "cap_min"), ("$lte", "cap_max"))
        if (value := _number(args, key, problems)) is not None
    }
    if capacity:
        where["max_capacity"] = capacity
    circle = _circle(args, problems)
    if circle:
        where["location"] = circle
    per_page = _int(args.get("per_page"), 25)
    per_page = per_page if per_page in PAGE_SIZES else 25
    page = page_number(args)
    params = {"sort": DEVICE_SORTS.get(args.get("sort", ""), "device_name"), "max_results": per_page, "page": page}
    if where:
        params["where"] = where
    return DeviceQuery(params, page, per_page, tuple(problems))


def _circle(args: Mapping[str, str], problems: list[str]) -> dict[str, Any] | None:
    """``$geoWithin`` / ``$centerSphere``: radius in km over the Earth's radius."""
    lat, lng, radius = (_number(args, k, problems) for k in ("lat", "lng", "radius_km"))
    if lat is None and lng is None and radius is None:
        return None
    if lat is None or lng is None or radius is None:
        problems.append("a location search needs latitude, longitude and radius")
        return None
    if not (-90 <= lat <= 90 and -180 <= lng <= 180 and radius > 0):
        problems.append("latitude −90…90, longitude −180…180 and a positive radius, please")
        return None
    return {"$geoWithin": {"$centerSphere": [[lng, lat], radius / EARTH_RADIUS_KM]}}


def _number(args: Mapping[str, str], key: str, problems: list[str]) -> float | None:
    text = (args.get(key) or "").strip()
    if not text:
        return None
    value = finite_number(text)
    if value is None:
        problems.append(f"{key.replace('_', ' ')} must be a number, not {text[:40]!r}")
    return value


def finite_number(text: str) -> float | None:
    """A decimal number typed by a person; None for text, ``nan``, ``inf``, ``1e400``."""
    try:
        value = float(text.strip())
    except (AttributeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def bounded_number(text: str, label: str, low: float, high: float, unit: str = "") -> tuple[float | None, str | None]:
    """(value, None) or (None, a message that says what is expected)."""
    value = finite_number(text)
    if value is None or not low <= value <= high:
        shown = (text or "").strip()[:40] or "nothing"
        return None, f"{label} must be a number from {low:g} to {high:g}{unit} (you typed {shown!r})."
    return value, None


def _int(text: str | None, default: int) -> int:
    return int(text) if text and _WHOLE.fullmatch(text) else default


def page_number(args: Mapping[str, str]) -> int:
    """The 1-based page a listing asks for; 1 when none is asked for.

    Raises InvalidPage for anything but a whole number from 1 to MAX_PAGE."""
    text = args.get("page")
    if text is None or text == "":
        return 1
    if not _WHOLE.fullmatch(text) or not 1 <= int(text) <= MAX_PAGE:
        raise InvalidPage(f"“{text[:20]}” is not a page number: pages are counted from 1.")
    return int(text)


def check_page(page: int, pages: int) -> None:
    """Raises PageOutOfRange when `page` is after the last of `pages`."""
    if page > pages:
        raise PageOutOfRange(f"There is no page {page}: this list has {pages} page{'s' if pages != 1 else ''}.")


def without_page(args: Mapping[str, str]) -> dict[str, str]:
    """The listing's other parameters, for the pager's links."""
    return {k: v for k, v in args.items() if k != "page"}


def page_count(total: int, per_page: int) -> int:
    return max((total + per_page - 1) // per_page, 1)


def pager(total: int, page: int, per_page: int) -> dict[str, int]:
    """The pager's context for a listing of `total` records, after checking that
    `page` exists (PageOutOfRange otherwise)."""
    pages = page_count(total, per_page)
    check_page(page, pages)
    return {"total": total, "page": page, "pages": pages}


def api_time(local: str) -> str | None:
    """An ``<input type=datetime-local>`` value (taken as UTC) in the API's format."""
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(local, fmt).strftime(DATE_FORMAT)
        except ValueError:
            continue
    return None


def input_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


def default_window(now: datetime | None = None, hours: int = 2) -> tuple[str, str]:
    """A quarter-hour aligned window starting at the next full hour plus one."""
    now = now or datetime.now(UTC)
    start = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    return input_time(start), input_time(start + timedelta(hours=hours))


def parse_api_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    for fmt in (DATE_FORMAT, "%a, %d %b %Y %H:%M:%S GMT", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def epoch(text: Any) -> float | None:
    moment = parse_api_time(text)
    return moment.timestamp() if moment else None
