"""Client query parameters (``where``, ``sort``) parsed and checked.

Eve hides its parse and operator errors behind a generic "bad request"
unless DEBUG is on, and does not sanitise ``where`` given in Python syntax
(``?where="$where" == "sleep(1000)"`` reaches MongoDB). Here both syntaxes go
through one operator allow-list and every refusal says what was wrong.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from eve.io.mongo import Mongo
from eve.io.mongo.parser import parse as parse_python_where
from werkzeug.exceptions import BadRequest

MAX_WHERE_LENGTH = 8192
MAX_DEPTH = 12
EXTRA_OPERATORS = {"$polygon"}


def allowed_operators(blacklist: list[str], whitelist: list[str]) -> set[str]:
    return (Mongo.operators | EXTRA_OPERATORS | set(whitelist)) - set(blacklist)


def parse_where(text: str, allowed: set[str], blacklist: list[str]) -> dict[str, Any]:
    """A Mongo-syntax (JSON) or Python-syntax filter, sanitised."""
    if len(text) > MAX_WHERE_LENGTH:
        raise BadRequest(description=f"`where` is longer than {MAX_WHERE_LENGTH} characters")
    try:
        spec = json.loads(text)
    except RecursionError:
        raise BadRequest(description=f"`where` is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:
        spec = _parse_python(text)
    if not isinstance(spec, dict):
        raise BadRequest(description="`where` must be a JSON object or a Python condition")
    check_operators(spec, allowed, blacklist)
    return spec


def _parse_python(text: str) -> Any:
    try:
        return parse_python_where(text)
    except Exception as exc:  # Eve's visitor raises KeyError, TypeError… on unsupported syntax
        raise BadRequest(
            description="Unable to parse `where`: use a JSON (Mongo) query or a "
            "Python condition with ==, !=, <, <=, >, >=, and, or"
        ) from exc


def check_operators(node: Any, allowed: set[str], blacklist: list[str], depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise BadRequest(description=f"`where` is nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                raise BadRequest(description="`where` keys must be strings")
            if key.startswith("$") and key in blacklist:
                raise BadRequest(description=f"`where` operator {key} is not allowed")
            if key.startswith("$") and key not in allowed:
                raise BadRequest(description=f"`where` operator {key} is unknown or unsupported")
            if key in OPERAND_RULES and not OPERAND_RULES[key][0](value):
                raise BadRequest(description=f"`where` operator {key} takes {OPERAND_RULES[key][1]}")
            check_operators(value, allowed, blacklist, depth + 1)
    elif isinstance(node, list):
        for value in node:
            check_operators(value, allowed, blacklist, depth + 1)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_bitmask(value: Any) -> bool:
    def position(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    return position(value) or (isinstance(value, list) and all(position(v) for v in value))


def _is_type_name(value: Any) -> bool:
    def name(v: Any) -> bool:
        return isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool))

    return name(value) or (isinstance(value, list) and bool(value) and all(name(v) for v in value))


# MongoDB refuses these operands with an error (a 500 if it got that far), so
# they are refused here, with the rule, on both backends
OPERAND_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "$in": (lambda v: isinstance(v, list), "a list"),
    "$nin": (lambda v: isinstance(v, list), "a list"),
    "$all": (lambda v: isinstance(v, list), "a list"),
    "$and": (
        lambda v: isinstance(v, list) and bool(v) and all(isinstance(c, dict) for c in v),
        "a non-empty list of conditions",
    ),
    "$or": (
        lambda v: isinstance(v, list) and bool(v) and all(isinstance(c, dict) for c in v),
        "a non-empty list of conditions",
    ),
    "$nor": (
        lambda v: isinstance(v, list) and bool(v) and all(isinstance(c, dict) for c in v),
        "a non-empty list of conditions",
    ),
    "$not": (lambda v: isinstance(v, dict) and bool(v), 'an operator expression such as {"$gt": 1}'),
    "$elemMatch": (lambda v: isinstance(v, dict), "an object"),
    "$mod": (
        lambda v: isinstance(v, list) and len(v) == 2 and all(map(_is_number, v)) and v[0] != 0,
        "[divisor, remainder] with a non-zero divisor",
    ),
    "$size": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a non-negative integer"),
    "$exists": (lambda v: isinstance(v, (bool, int)), "true or false"),
    "$type": (_is_type_name, "a BSON type name or number, or a list of them"),
    **{
        op: (_is_bitmask, "a non-negative integer or a list of bit positions")
        for op in ("$bitsAllSet", "$bitsAllClear", "$bitsAnySet", "$bitsAnyClear")
    },
}


def field_names(node: Any) -> set[str]:
    """Every field path a parsed ``where`` names (keys that are not operators)."""
    names: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            names.update(k for k in item if isinstance(k, str) and not k.startswith("$"))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return names


def parse_sort(text: str) -> list[tuple[str, int]]:
    """``[("field", -1)]`` (Mongo) or ``-field,other`` (Eve's short form)."""
    try:
        sort = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        sort = [(s[1:], -1) if s.startswith("-") else (s, 1) for s in (part.strip() for part in text.split(",")) if s]
    if isinstance(sort, tuple) and len(sort) == 2 and isinstance(sort[0], str):
        sort = [sort]
    if not isinstance(sort, list) or not sort or not all(_is_sort_key(k) for k in sort):
        raise BadRequest(description='`sort` must look like [("field", 1), ("other", -1)] or "-field,other"')
    return [(field, int(direction)) for field, direction in sort]


# a field path of the schemas' kind: ASCII names joined by dots
SORT_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*$")


def _is_sort_key(key: Any) -> bool:
    return (
        isinstance(key, (list, tuple))
        and len(key) == 2
        and isinstance(key[0], str)
        and SORT_FIELD.match(key[0]) is not None
        and key[1] in (1, -1)
    )


DATE_COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
DATE_LISTS = ("$in", "$nin", "$all")


def date_fields(schema: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """The paths of a resource schema's datetime fields (through dicts and lists of dicts)."""
    for name, rule in schema.items():
        if not isinstance(rule, Mapping):
            continue
        if rule.get("type") == "datetime":
            yield prefix + name
        inner = rule.get("schema")
        if rule.get("type") == "list" and isinstance(inner, Mapping) and inner.get("type") == "dict":
            inner = inner.get("schema")
        if isinstance(inner, Mapping) and rule.get("type") in ("dict", "list"):
            yield from date_fields(inner, f"{prefix}{name}.")


def check_dates(spec: Any, fields: set[str], date_format: str) -> None:
    """A 400 for a date field compared with anything but a date in ``date_format``.

    Eve turns a ``where`` string into a date only when it parses with DATE_FORMAT;
    any other string (an RFC 1123 date, a date with an offset) or a number stays as
    it is, and a MongoDB comparison of a date with a string matches nothing: the
    client would get an empty answer, as if no document qualified."""
    if isinstance(spec, list):
        for item in spec:
            check_dates(item, fields, date_format)
        return
    if not isinstance(spec, dict):
        return
    for key, value in spec.items():
        path = ".".join(part for part in str(key).split(".") if not part.isdigit())  # history.0.at: history.at
        if key in ("$and", "$or", "$nor"):
            check_dates(value, fields, date_format)
        elif path in fields:
            _check_date_condition(path, value, date_format)
        elif isinstance(value, dict) and isinstance(value.get("$elemMatch"), dict):
            inner = {f[len(path) + 1 :] for f in fields if f.startswith(path + ".")}
            check_dates(value["$elemMatch"], inner, date_format)  # the members' own fields


def _check_date_condition(field: str, value: Any, date_format: str) -> None:
    if isinstance(value, dict) and any(isinstance(k, str) and k.startswith("$") for k in value):
        for op, operand in value.items():
            if op in DATE_COMPARISONS:
                _check_date(field, operand, date_format)
            elif op in DATE_LISTS and isinstance(operand, list) and operand:
                for item in operand:
                    _check_date(field, item, date_format)
            elif op in ("$not", "$elemMatch"):
                _check_date_condition(field, operand, date_format)
            elif op in ("$all", "$size"):  # an empty $all matches every document on one store, none on the other
                raise BadRequest(description=f"`where`: {field} is a date, not a list: {op} does not apply")
        return
    _check_date(field, value, date_format)


def _check_date(field: str, value: Any, date_format: str) -> None:
    if value is None or isinstance(value, datetime):
        return  # a missing date, or one the Python syntax built (datetime(2030, 1, 31))
    if isinstance(value, str):
        try:
            datetime.strptime(value, date_format)
            return
        except ValueError:
            pass
    example = datetime(2030, 1, 31, 12, 0).strftime(date_format)
    raise BadRequest(
        description=f"`where`: {field} is a date, written as {example} (UTC), not {json.dumps(value)[:80]}"
    )
