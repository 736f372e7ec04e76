"""Who may do what: the role policy of docs/contract.md ("Roles and data scoping"), enforced on every verb.

* methods: a role may or may not use a verb on a resource (403);
* scope: aggregators and prosumers only ever reach their own documents: the
  filter is applied inside the data layer, so lists, items, PATCH, DELETE,
  embedded documents and aggregations are all scoped (another party's item
  is a 404, its existence is not revealed);
* fields: which fields a role may change, and which it may not see;
* owners: what a role creates is its own.

The tables themselves are in schemas/policy.py, below the admin UI too; this
module enforces them.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from eve import Eve
from eve.methods.common import abort
from flask import current_app, g, has_request_context, request

from registry.api import query
from registry.auth import Principal
from schemas.policy import HIDDEN, METHODS, OWNER_FIELD, PATCHABLE, RESOURCE_OWNER_FIELD, UNFILTERABLE, UNSCOPED


def principal() -> Principal | None:
    return g.get("principal") if has_request_context() else None


def allowed_methods(resource: str, role: str) -> frozenset[str]:
    methods = METHODS.get(resource, {}).get(role, frozenset())
    return methods | {"HEAD"} if "GET" in methods else methods  # HEAD is GET without the body


def scope_filter(resource: str) -> dict[str, Any] | None:
    """The filter every read and write of ``resource`` gets for this caller."""
    who = principal()
    if who is None or who.role not in OWNER_FIELD or resource in UNSCOPED:
        return None
    field = OWNER_FIELD[who.role]
    value = getattr(who, field)
    if not value:
        abort(403, description=f"your token carries no {field}; a {who.role} token needs one")
    return {RESOURCE_OWNER_FIELD.get((resource, who.role), field): value}


def hidden_fields(resource: str) -> frozenset[str]:
    who = principal()
    return HIDDEN.get((resource, who.role), frozenset()) if who else frozenset()


def refuse_hidden_field_queries(resource: str, req: Any, lookup: dict[str, Any]) -> None:
    """Filtering, sorting or projecting on a field the caller may not see would
    leak it (``_meta.total`` answers yes / no). The check reads the parsed
    parameters, as the store will: JSON escapes (``\\u0065mail``) are decoded
    and Python-syntax names are NFKC-normalised by the parser (``ｎame`` is
    ``name``); any other non-ASCII name is refused outright."""
    who = principal()
    hidden = hidden_fields(resource)
    shared = UNFILTERABLE.get((resource, who.role), frozenset()) if who else frozenset()
    if not hidden and not shared:
        return
    named = {name.split(".")[0] for name in queried_fields(resource, with_projection=bool(hidden))}
    refused = sorted(n for n in named if not n.isascii() or _normal(n) in {_normal(h) for h in hidden | shared})
    if refused:
        abort(400, description=f"field(s) not visible to your role: {', '.join(refused)}")


def queried_fields(resource: str, with_projection: bool = True) -> set[str]:
    """The field names of this request's ``where``, ``sort`` and ``projection``."""
    config = current_app.config
    names: set[str] = set()
    where = request.args.get(config["QUERY_WHERE"])
    if where:
        blacklist = config["MONGO_QUERY_BLACKLIST"]
        allowed = query.allowed_operators(blacklist, config["DOMAIN"][resource].get("mongo_query_whitelist", []))
        names |= query.field_names(query.parse_where(where, allowed, blacklist))
    sort = request.args.get(config["QUERY_SORT"])
    if sort:
        names |= {field for field, _ in query.parse_sort(sort)}
    projection = request.args.get(config["QUERY_PROJECTION"])
    if projection and with_projection:
        names |= set(json.loads(projection))  # shape checked by registry.api.guards
    return names


def _normal(name: str) -> str:
    return unicodedata.normalize("NFKC", name).casefold()


def check_patchable(resource: str, updates: dict[str, Any], original: dict[str, Any]) -> None:
    """The fields a role may change, checked on the update Eve is about to write
    (whatever the body's encoding), not on the request text."""
    who = principal()
    if who is None or who.role == "admin":
        return
    allowed = PATCHABLE.get((resource, who.role), frozenset()) | server_stamped_fields()
    refused = sorted(set(updates) - allowed)
    if refused:
        abort(403, description=f"a {who.role} may not change: {', '.join(refused)}")


def server_stamped_fields() -> frozenset[str]:
    """What Eve itself adds to every update before ``on_update`` fires."""
    config = current_app.config
    return frozenset({config["LAST_UPDATED"], config["DELETED"], config["VERSION"]})


def check_patchable_replacement(resource: str, document: dict[str, Any], original: dict[str, Any]) -> None:
    """PUT is off for every resource today; should one enable it, a replacement
    may only differ from the original in fields the role may change."""
    changed = {k: v for k, v in document.items() if original.get(k) != v}
    check_patchable(resource, changed, original)


def check_owner_on_insert(resource: str, items: list[dict[str, Any]]) -> None:
    """What an aggregator or prosumer creates must be its own."""
    scope = scope_filter(resource)
    schema = current_app.config["DOMAIN"][resource]["schema"]
    for field, value in (scope or {}).items():
        if schema.get(field, {}).get("readonly"):
            continue  # copied by the resource's own hook, which checks ownership
        for item in items:
            if item.get(field) != value:
                abort(403, description=f"{field} must be your own ({value})")
    if principal() and principal().role in OWNER_FIELD:
        check_prosumer_link(items)


def check_prosumer_link(items: list[dict[str, Any]]) -> None:
    """account_id / aggregator_id pairs must match the prosumers registry."""
    pairs = {(i.get("account_id"), i.get("aggregator_id")) for i in items if "account_id" in i}
    db = current_app.data.driver.db
    for account_id, aggregator_id in pairs:
        if not db["prosumers"].find_one({"account_id": account_id, "aggregator_id": aggregator_id}):
            abort(422, description=f"account {account_id} is not a prosumer of aggregator {aggregator_id}")


def refuse_delete_of_unseen_item(resource: str, req: Any, lookup: dict[str, Any]) -> None:
    """Eve answers 204 for a missing item; a caller must not tell "deleted"
    from "not yours", and a typo deserves a 404 too."""
    if lookup and current_app.data.find_one(resource, None, **lookup) is None:
        abort(404)


HOOKS = [
    ("on_pre_DELETE", refuse_delete_of_unseen_item),
    ("on_pre_GET", refuse_hidden_field_queries),
    ("on_update", check_patchable),
    ("on_replace", check_patchable_replacement),
    ("on_insert", check_owner_on_insert),
]


def init_app(app: Eve) -> None:
    """Give the data layer the caller's scope and hidden fields."""
    app.data.scope_filter = scope_filter
    app.data.hidden_fields = hidden_fields
