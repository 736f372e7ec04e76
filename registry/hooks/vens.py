"""VEN enrolments: the registry, not the client, names a VEN and issues its secret.

POST /vens gets a ``ven_id`` and a per-enrolment secret here (the schema makes
both read-only for every client); only the secret's hash is stored and the
secret is added to the 201 answer, the one place it is ever shown. The answer
must therefore be JSON: another ``Accept`` is refused before anything is stored.
"""

from __future__ import annotations

import json
from typing import Any

from eve.methods.common import abort
from eve.render import _best_mime
from flask import g

from registry.openadr import enrolment


def require_json_answer(req: Any) -> None:
    # Eve's own choice of renderer for this request (private, but the same decision)
    if "json" not in _best_mime()[0]:
        abort(
            406, description="an enrolment's secret is returned once, in a JSON answer: send Accept: application/json"
        )


def issue_ven_identity(items: list[dict[str, Any]]) -> None:
    issued = g.setdefault("ven_secrets", {})
    for item in items:
        secret = enrolment.new_secret()
        item["ven_id"] = enrolment.new_ven_id()
        item["secret_hash"] = enrolment.hash_secret(secret)
        issued[item["ven_name"]] = secret


def reveal_secrets_once(req: Any, payload: Any) -> None:
    issued = g.pop("ven_secrets", None)
    if not issued or payload.status_code != 201:
        return
    body = json.loads(payload.get_data())
    for item in body.get("_items", [body]):
        if item.get("ven_name") in issued:
            item["secret"] = issued[item["ven_name"]]
    payload.set_data(json.dumps(body))


HOOKS = [
    ("on_pre_POST_vens", require_json_answer),
    ("on_insert_vens", issue_ven_identity),
    ("on_post_POST_vens", reveal_secrets_once),
]
