"""Who may do what: the role policy of SPEC §4, enforced on every verb.

* methods: a role may or may not use a verb on a resource (403);
* scope: aggregators and prosumers only ever reach their own documents: the
  filter is applied inside the data layer, so lists, items, PATCH, DELETE,
  embedded documents and aggregations are all scoped (another party's item
  is a 404, its existence is not revealed);
* fields: which fields a role may change, and which it may not see;
* owners: what a role creates is its own.
"""
from __future__ import annotations

from typing import Any

from eve import Eve
from eve.methods.common import abort
from flask import current_app, g, has_request_context, request

from registry.auth import Principal

ALL = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE"})
READ = frozenset({"GET"})

METHODS: dict[str, dict[str, frozenset[str]]] = {
    "devices": {"aggregator": frozenset({"GET", "PATCH"}), "prosumer": frozenset({"GET", "PATCH"}),
                "service": frozenset({"GET", "POST", "PATCH"}), "admin": ALL},
    "aggregators": {"aggregator": READ, "prosumer": READ, "service": READ, "admin": ALL},
    "prosumers": {"aggregator": READ, "prosumer": frozenset({"GET", "PATCH"}),
                  "service": frozenset({"GET", "POST", "PATCH"}), "admin": ALL},
    "measurements": {"aggregator": READ, "prosumer": READ, "service": frozenset({"GET", "POST"}),
                     "admin": ALL},
    "vens": {"aggregator": frozenset({"GET", "POST", "PATCH", "DELETE"}),
             "prosumer": frozenset({"GET", "POST", "DELETE"}),
             "service": frozenset({"GET", "PATCH"}), "admin": ALL},
    "oplog": {"admin": READ},
    "offers": {"aggregator": READ, "prosumer": frozenset({"GET", "POST", "PATCH"}), "service": READ,
               "admin": ALL},
    "contracts": {"aggregator": frozenset({"GET", "POST", "PATCH"}), "prosumer": frozenset({"GET", "PATCH"}),
                  "service": frozenset({"GET", "PATCH"}), "admin": ALL},
    # written by the job layer (registry/jobs); a service may also post its own
    "forecasts": {"aggregator": READ, "prosumer": READ, "service": frozenset({"GET", "POST"}), "admin": ALL},
    "advice": {"aggregator": READ, "prosumer": READ, "service": frozenset({"GET", "POST"}), "admin": ALL},
    "jobs": {"aggregator": READ, "prosumer": READ, "service": READ, "admin": ALL},
    "prices": {"aggregator": READ, "prosumer": READ, "service": frozenset({"GET", "POST"}), "admin": ALL},
}

OWNER_FIELD = {"aggregator": "aggregator_id", "prosumer": "account_id"}
# where a resource keeps a role's owner under another name (a list matches its members)
RESOURCE_OWNER_FIELD: dict[tuple[str, str], str] = {("contracts", "prosumer"): "account_ids"}
# public directories: every role reads every aggregator and every price series
UNSCOPED = frozenset({"aggregators", "prices"})

PATCHABLE: dict[tuple[str, str], frozenset[str]] = {
    ("devices", "prosumer"): frozenset({"availability", "marketplace_availability", "dr_availability",
                                        "available_capacity", "status"}),
    ("devices", "aggregator"): frozenset({"dr_availability", "status"}),
    ("devices", "service"): frozenset({"device_name", "status", "availability", "device_class",
                                       "device_type", "max_capacity", "available_capacity", "location"}),
    ("prosumers", "prosumer"): frozenset({"display_name", "name", "email", "phone", "address"}),
    ("prosumers", "service"): frozenset({"display_name", "contracted_max_power_kw"}),
    ("vens", "aggregator"): frozenset({"resources", "registration_status", "fingerprint"}),
    ("vens", "service"): frozenset({"ven_id", "registration_status", "registered_at", "resources"}),
    ("offers", "prosumer"): frozenset({"status", "price", "power_kw"}),
    ("contracts", "prosumer"): frozenset({"status"}),
    ("contracts", "aggregator"): frozenset({"status"}),
    ("contracts", "service"): frozenset({"status", "ven_response"}),
}

HIDDEN: dict[tuple[str, str], frozenset[str]] = {
    ("prosumers", "aggregator"): frozenset({"name", "email", "phone", "address"}),
}


def principal() -> Principal | None:
    return g.get("principal") if has_request_context() else None


def allowed_methods(resource: str, role: str) -> frozenset[str]:
    return METHODS.get(resource, {}).get(role, frozenset())


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
    """Filtering or sorting on a field the caller may not see would leak it."""
    hidden = hidden_fields(resource)
    if not hidden:
        return
    text = " ".join(request.args.get(p, "") for p in ("where", "sort", "projection"))
    named = sorted(f for f in hidden if f in text)
    if named:
        abort(400, description=f"field(s) not visible to your role: {', '.join(named)}")


def check_patchable(resource: str, req: Any, lookup: dict[str, Any]) -> None:
    who = principal()
    if who is None or who.role == "admin":
        return
    allowed = PATCHABLE.get((resource, who.role), frozenset())
    changed = set(req.get_json(silent=True) or {})
    refused = sorted(changed - allowed)
    if refused:
        abort(403, description=f"a {who.role} may not change: {', '.join(refused)}")


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
    ("on_pre_PATCH", check_patchable),
    ("on_pre_PUT", check_patchable),
    ("on_insert", check_owner_on_insert),
]


def init_app(app: Eve) -> None:
    """Give the data layer the caller's scope and hidden fields."""
    app.data.scope_filter = scope_filter
    app.data.hidden_fields = hidden_fields
