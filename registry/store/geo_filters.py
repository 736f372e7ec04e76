"""Geo clauses inside Mongo filters: finding, validating, rewriting them, and
evaluating them on the embedded store (mongomock has no geo operators).

The embedded path splits a filter into its geo clauses and the rest: mongomock
evaluates the rest, Python the geo part, then sort, paging and projection are
applied to the survivors — one pass over the collection whatever the number of
matches (an ``_id: {$in: [...]}`` rewrite would cost mongomock O(n x m)). The
survivors are the stored documents themselves, sorted in place of copies; only the
returned page is copied, as mongomock's cursor would have copied it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mongomock.collection import validate_is_mapping
from mongomock.filtering import resolve_sort_key
from mongomock.helpers import make_datetime_timezone_aware_in_document, patch_datetime_awareness_in_document
from werkzeug.exceptions import BadRequest

from registry.store import geo

Replace = Callable[[geo.GeoClause, dict], dict[str, Any]]
LOGICAL = ("$and", "$or", "$nor")


def has_geo(spec: Any) -> bool:
    if isinstance(spec, dict):
        return any(
            geo.is_geo_condition(v) or has_geo(v) for k, v in spec.items() if k in LOGICAL or not k.startswith("$")
        )
    if isinstance(spec, list):
        return any(has_geo(v) for v in spec)
    return False


def check(spec: dict) -> None:
    """Raise a 400 for a malformed geo clause anywhere in ``spec``."""
    rewrite(spec, lambda clause, condition: {})


def count_safe(spec: dict) -> dict:
    """MongoDB's rule: count ``$near`` as the equivalent ``$geoWithin``."""
    return rewrite(spec, lambda c, cond: c.as_within() if c.is_near else {c.field: cond})


def rewrite(spec: dict, replace: Replace, in_or: bool = False) -> dict:
    """Return ``spec`` with every geo clause replaced; validates while walking."""
    out: dict[str, Any] = {}
    extra: list[dict[str, Any]] = []
    for key, value in spec.items():
        if key in LOGICAL and isinstance(value, list):
            nested_or = in_or or key != "$and"
            out[key] = [rewrite(v, replace, nested_or) if isinstance(v, dict) else v for v in value]
        elif not key.startswith("$") and geo.is_geo_condition(value):
            extra.append(replace(parse(key, value, in_or), value))
        else:
            out[key] = value
    return {"$and": [out, *extra]} if extra else out


def parse(field: str, condition: dict, in_or: bool = False) -> geo.GeoClause:
    try:
        clause = geo.parse_clause(field, condition)
    except geo.GeoQueryError as exc:
        raise BadRequest(description=f"Invalid geo query: {exc}") from exc
    if clause.is_near and in_or:
        raise BadRequest(description="Invalid geo query: $near / $nearSphere cannot sit inside $or / $nor")
    return clause


def split(spec: dict) -> tuple[dict, list[geo.GeoClause]] | None:
    """(rest, clauses) when every geo clause is top-level or under ``$and``."""
    clauses: list[geo.GeoClause] = []
    ok = True

    def take(clause: geo.GeoClause, condition: dict) -> dict:
        clauses.append(clause)
        return {}

    def under_or(clause: geo.GeoClause, condition: dict) -> dict:
        nonlocal ok
        ok = False
        return {clause.field: condition}

    rest = _strip(spec, take, under_or)
    return (rest, clauses) if ok else None


def _strip(spec: dict, take: Replace, under_or: Replace, in_or: bool = False) -> dict:
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if key in LOGICAL and isinstance(value, list):
            nested_or = in_or or key != "$and"
            out[key] = [_strip(v, take, under_or, nested_or) if isinstance(v, dict) else v for v in value]
        elif not key.startswith("$") and geo.is_geo_condition(value):
            clause = parse(key, value, in_or)
            (under_or if in_or else take)(clause, value)
            if in_or:
                out[key] = value
        else:
            out[key] = value
    return out


def matches(clause: geo.GeoClause, doc: dict) -> bool:
    point = geo.point_of(dotted(doc, clause.field))
    return point is not None and clause.matches(*point)


def dotted(doc: Any, path: str) -> Any:
    for part in path.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def embedded_matching(coll: Any, spec: dict) -> tuple[list[dict], geo.GeoClause | None]:
    """Full documents matching ``spec`` on mongomock, and its ``$near`` clause."""
    parts = split(spec)
    if parts is None:
        return list(coll.find(rewrite(spec, lambda c, cond: _ids_matching(coll, c)))), None
    rest, clauses = parts
    docs = [d for d in stored(coll, rest) if all(matches(c, d) for c in clauses)]
    return docs, next((c for c in clauses if c.is_near), None)


def stored(coll: Any, spec: dict) -> list[dict]:
    """The stored documents (not copies: read only) matching ``spec``, in storage order,
    as mongomock's ``find`` selects them (its indexes included, registry.store.embedded_index)
    but without copying every match: only the page that is returned is copied (:func:`copied`)."""
    validate_is_mapping("filter", spec)
    return list(coll._iter_documents(patch_datetime_awareness_in_document(spec)))


def copied(coll: Any, doc: dict) -> dict:
    """What mongomock's cursor gives for a stored document: a deep copy, dates aware UTC
    when the client is ``tz_aware`` (mongomock keeps them naive UTC)."""
    copy = coll._copy_only_fields(doc, None, dict)
    return make_datetime_timezone_aware_in_document(copy) if coll.codec_options.tz_aware else copy


def _ids_matching(coll: Any, clause: geo.GeoClause) -> dict[str, Any]:
    # rare: a geo clause under $or; correct, if slower on large collections
    ids = [d["_id"] for d in coll.find({clause.field: {"$exists": True}}, {clause.field: 1}) if matches(clause, d)]
    return {"_id": {"$in": ids}}


def embedded_find(coll: Any, spec: dict, projection: Any, sort: Any, skip: int, limit: int) -> list[dict]:
    docs, near = embedded_matching(coll, spec)
    if sort:
        for key, direction in reversed(list(sort.items() if isinstance(sort, dict) else sort)):
            docs.sort(key=lambda d: resolve_sort_key(key, d), reverse=direction < 0)
    elif near is not None:
        docs.sort(key=lambda d: near.distance_m(*geo.point_of(dotted(d, near.field))))
    page = docs[skip : skip + limit if limit else None]
    return [project(copied(coll, d), projection) for d in page]


def project(doc: dict, projection: Any) -> dict:
    """Inclusion or exclusion projection on top-level and dotted fields."""
    if not projection:
        return doc
    spec = {f: 1 for f in projection} if isinstance(projection, (list, tuple)) else dict(projection)
    keep_id = spec.pop("_id", 1)
    if any(spec.values()):
        out = {k: v for k, v in doc.items() if k in {f.split(".")[0] for f, on in spec.items() if on}}
    else:
        out = {k: v for k, v in doc.items() if k not in spec}
    if keep_id and "_id" in doc:
        out["_id"] = doc["_id"]
    elif not keep_id:
        out.pop("_id", None)
    return out
