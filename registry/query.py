"""Client query parameters (``where``, ``sort``) parsed and checked.

Eve hides its parse and operator errors behind a generic "bad request"
unless DEBUG is on, and does not sanitise ``where`` given in Python syntax
(``?where="$where" == "sleep(1000)"`` reaches MongoDB). Here both syntaxes go
through one operator allow-list and every refusal says what was wrong.
"""
from __future__ import annotations

import ast
import json
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
        raise BadRequest(description="Unable to parse `where`: use a JSON (Mongo) query or a "
                                     "Python condition with ==, !=, <, <=, >, >=, and, or") from exc


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
            check_operators(value, allowed, blacklist, depth + 1)
    elif isinstance(node, list):
        for value in node:
            check_operators(value, allowed, blacklist, depth + 1)


def parse_sort(text: str) -> list[tuple[str, int]]:
    """``[("field", -1)]`` (Mongo) or ``-field,other`` (Eve's short form)."""
    try:
        sort = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        sort = [(s[1:], -1) if s.startswith("-") else (s, 1)
                for s in (part.strip() for part in text.split(",")) if s]
    if isinstance(sort, tuple) and len(sort) == 2 and isinstance(sort[0], str):
        sort = [sort]
    if not isinstance(sort, list) or not sort or not all(_is_sort_key(k) for k in sort):
        raise BadRequest(description='`sort` must look like [("field", 1), ("other", -1)] or "-field,other"')
    return [(field, int(direction)) for field, direction in sort]


def _is_sort_key(key: Any) -> bool:
    return (isinstance(key, (list, tuple)) and len(key) == 2 and isinstance(key[0], str)
            and key[0] != "" and not key[0].startswith("$") and key[1] in (1, -1))
