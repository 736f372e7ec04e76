"""A prosumer's rights over its data (docs/privacy.md; issue 18, item 4).

    GET  /accounts/<account_id>/export   one zip: account.json + measurements.csv
    POST /accounts/<account_id>/erase    {"confirm": "<account_id>"}

Allowed to the prosumer whose account it is and to admins; another prosumer gets a
404 (the account's existence is not revealed), any other role a 403. Both are
audited in the oplog (``o``: ``EXPORT`` / ``ERASE``, who, from where), and both carry
``Cache-Control: no-store``. The same tokens, rate limits and request ids as every
API route.
"""

from __future__ import annotations

from typing import Any

from eve import Eve
from flask import Blueprint, Response, current_app, jsonify, request

from registry.api import privacy_erase, privacy_export
from registry.api.advice_requests import error
from registry.api.validator import is_canonical_uuid
from registry.auth import provider
from registry.auth.bearer import authenticated
from registry.store.clock import utcnow

bp = Blueprint("privacy", __name__)
NO_STORE = {"Cache-Control": "no-store"}


def account_owner(account_id: str, verb: str) -> Any:
    """The caller, if it may ``verb`` this account: itself, or an admin."""
    who = authenticated()
    current_app.auth.set_user_or_token(f"{who.role}:{who.subject}")
    if who.role not in ("prosumer", "admin"):
        error(403, f"the {who.role} role may not {verb} a prosumer's account")
    if not is_canonical_uuid(account_id) or (who.role == "prosumer" and who.account_id != account_id):
        error(404, "no such account")
    return who


def id_fields() -> dict[str, str]:
    """Each resource's ``id_field``: what Eve's oplog names its documents by."""
    return {name: domain["id_field"] for name, domain in current_app.config["DOMAIN"].items()}


def audit(db: Any, account_id: str, op: str, held: dict[str, Any] | None, changes: dict[str, Any] | None) -> None:
    """One oplog entry in Eve's shape (registry/api/ingest.py writes its own the same way)."""
    now = utcnow()
    prosumer = (held or {}).get("prosumer")
    entry = {
        "r": "prosumers",
        "o": op,
        "i": prosumer["_id"] if prosumer else account_id,
        "account_id": account_id,
        "ip": request.remote_addr,
        "u": current_app.auth.get_user_or_token(),
        "_created": now,
        "_updated": now,
    }
    if changes is not None:
        entry["c"] = changes
    current_app.data.insert(privacy_export.OPLOG, [entry])


@bp.get("/accounts/<account_id>/export")
def export(account_id: str) -> Response:
    account_owner(account_id, "export")
    db = current_app.data.driver.db
    held = privacy_export.collect(db, account_id)
    if privacy_export.is_empty(held):
        error(404, "no such account")
    if request.method == "HEAD":  # what a GET would answer, without building or auditing it
        return Response(mimetype="application/zip", headers=NO_STORE)
    audit(db, account_id, "EXPORT", held, None)  # before the audit is read: the export lists itself
    body = privacy_export.archive(db, account_id, held, utcnow(), id_fields())
    disposition = f'attachment; filename="account-{account_id}.zip"'
    return Response(body, mimetype="application/zip", headers={"Content-Disposition": disposition, **NO_STORE})


@bp.post("/accounts/<account_id>/erase")
def erase(account_id: str) -> Response:
    account_owner(account_id, "erase")
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or body.get("confirm") != account_id:
        error(400, 'send {"confirm": "<the account id>"}: erasure cannot be undone')
    db = current_app.data.driver.db
    held = privacy_export.collect(db, account_id)
    if privacy_export.is_empty(held):
        error(404, "no such account")
    blocking = privacy_erase.unsettled_contracts(db, account_id)
    if blocking:
        error(
            409,
            "the account has contracts not yet settled or called off; its readings are needed to settle "
            f"them, so erasure waits until they are: {', '.join(blocking[:20])}",
            contracts=blocking,
        )
    counts = privacy_erase.erase(db, account_id, utcnow(), privacy_export.audited_ids(held, id_fields()))
    audit(db, account_id, "ERASE", held, {"erased": counts})
    # users are the operator's configuration (OAUTH_USERS, or an external issuer's): named for removal
    users = provider.users_of_account(account_id)
    response = jsonify({"_status": "OK", "account_id": account_id, "erased": counts, "sign_in_users": users})
    response.headers.update(NO_STORE)
    return response


def openapi_paths() -> dict[str, Any]:
    """The two routes in the OpenAPI document (not Eve resources)."""
    account = {"name": "account_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
    errors = {code: {"$ref": "#/components/responses/error"} for code in ("401", "403", "404", "429")}
    return {
        "/accounts/{account_id}/export": {
            "get": {
                "summary": "Everything held about a prosumer account, as one zip (the prosumer itself, or an admin)",
                "tags": ["privacy"],
                "parameters": [account],
                "responses": {
                    "200": {
                        "description": "about.txt, account.json, measurements.csv",
                        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
                    },
                    **errors,
                },
            }
        },
        "/accounts/{account_id}/erase": {
            "post": {
                "summary": "Erase a prosumer account's personal data (the prosumer itself, or an admin)",
                "tags": ["privacy"],
                "parameters": [account],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["confirm"],
                                "properties": {"confirm": {"type": "string", "description": "the account id again"}},
                            }
                        }
                    },
                },
                "responses": {
                    "200": {"description": "what was erased, by kind", "content": {"application/json": {}}},
                    "400": {"$ref": "#/components/responses/error"},
                    "409": {"$ref": "#/components/responses/error"},
                    "415": {"$ref": "#/components/responses/error"},
                    **errors,
                },
            }
        },
    }


def init_app(app: Eve) -> None:
    app.register_blueprint(bp)
