"""``Idempotency-Key`` on POST: a client's retry never creates a second document.

The registry keeps, per caller (token issuer and subject), resource and key,
a fingerprint of the parsed request body, the ids of the documents the
request creates and, once answered, the response. A retry with the same key:

* same body, first request answered 2xx → the same status and body again,
  with ``Idempotent-Replayed: true``; nothing new is stored;
* another body → 422;
* the first request still running → 409 (retry shortly);
* the first request refused (4xx) or failed before storing anything → the key
  was released, so the retry runs anew;
* the first request's worker died: if its documents were stored the retry
  replays them; if not, once ``REQUEST_GRACE_SECONDS`` have passed, the retry
  takes the key over (and the resource's repair clears what the dead request
  left half-done).

The document ids are recorded before the write and the record is closed in
the same :mod:`registry.store.atomic` plan as the write (one transaction on a
replica set). Keys expire after ``IDEMPOTENCY_KEY_HOURS``.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urljoin

from bson import ObjectId
from eve.methods.common import abort
from flask import Response, current_app, g, request
from pymongo.errors import DuplicateKeyError
from werkzeug.exceptions import HTTPException

from registry.store import atomic
from registry.store.clock import utcnow
from registry.store.idempotency_keys import COLLECTION

HEADER = "Idempotency-Key"
KEY_TEXT = re.compile(r"^[\x21-\x7e]{1,255}$")
# resource -> repair(db, ids of documents a dead request meant to store)
REPAIRS: dict[str, Callable[[Any, list[Any]], Any]] = {}


def requested_key() -> str | None:
    """The header's key (a quoted structured-field string or a bare token), or a 400."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    key = raw.strip()
    key = key[1:-1] if len(key) > 1 and key[0] == key[-1] == '"' else key
    if not KEY_TEXT.match(key):
        abort(400, description=f"{HEADER} must be 1 to 255 visible ASCII characters (e.g. a UUID)")
    return key


def fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def begin(resource: str, caller: str, body: Any) -> None:
    """Claim the key for this request, or answer from the earlier one (raises)."""
    key = requested_key()
    if key is None:
        return
    db, now = _db(), utcnow()
    record = {
        "caller": caller,
        "resource": resource,
        "key": key,
        "fingerprint": fingerprint(body),
        "status": "pending",
        "attempt": uuid.uuid4().hex,
        "document_ids": None,
        "response": None,
        "started_at": now,
        "expires_at": now + timedelta(hours=_setting("IDEMPOTENCY_KEY_HOURS", 24)),
    }
    identity = {k: record[k] for k in ("caller", "resource", "key")}
    for _ in range(3):
        try:
            db[COLLECTION].insert_one(dict(record))
            g.idempotency = record
            return
        except DuplicateKeyError:
            earlier = db[COLLECTION].find_one(identity)
        if earlier is not None:
            return _answer_retry(db, earlier, record, now)
    abort(409, description=f"the {HEADER} {key} is being used by another request; retry shortly")


def _answer_retry(db: Any, earlier: dict[str, Any], record: dict[str, Any], now: datetime) -> None:
    if earlier["fingerprint"] != record["fingerprint"]:
        abort(
            422,
            description=f"the {HEADER} {record['key']} was used for a different request body; "
            "use a new key for a new request",
        )
    if earlier["status"] == "done" or _stored(db, earlier):
        replay(db, earlier)
    if earlier["started_at"] > now - timedelta(seconds=_setting("REQUEST_GRACE_SECONDS", 120)):
        abort(
            409,
            description=f"a request with the {HEADER} {record['key']} is still being processed; retry in a few seconds",
        )
    taken = (
        db[COLLECTION]
        .update_one(
            {"_id": earlier["_id"], "attempt": earlier["attempt"]},
            {"$set": {"attempt": record["attempt"], "started_at": now, "document_ids": None}},
        )
        .modified_count
    )
    if not taken:
        abort(409, description=f"a request with the {HEADER} {record['key']} is being retried; retry shortly")
    if earlier.get("document_ids") and earlier["resource"] in REPAIRS:
        REPAIRS[earlier["resource"]](db, earlier["document_ids"])
    g.idempotency = {**earlier, "attempt": record["attempt"], "document_ids": None}


def plan_writes(resource: str, items: list[dict[str, Any]]) -> None:
    """on_insert: give the documents their ids now, record them before the write,
    and close the key with the write (same plan, same transaction)."""
    record = g.get("idempotency")
    if record is None or record["resource"] != resource:
        return
    ids = [item.setdefault("_id", ObjectId()) for item in items]
    record["document_ids"] = ids
    plan = atomic.plan(resource)
    plan.before.insert(0, atomic.Step("idempotency_intent", lambda db: _set(db, record, {"document_ids": ids})))
    plan.after.append(atomic.Step("idempotency_done", lambda db: _set(db, record, {"status": "done"})))


def finish(response: Response) -> Response:
    """after_request: keep a 2xx answer for replays; release the key after a refusal."""
    record = g.pop("idempotency", None)
    if record is None:
        return response
    db = _db()
    if response.status_code < 400:
        _set(
            db,
            record,
            {
                "status": "done",
                "response": {
                    "status": response.status_code,
                    "body": response.get_data(as_text=True),
                    "content_type": response.content_type,
                    "location": _absolute(response.headers.get("Location")),
                },
            },
        )
    elif _stored(db, record):
        _set(db, record, {"status": "done"})
    else:
        db[COLLECTION].delete_one(_mine(record))
    return response


def replay(db: Any, record: dict[str, Any]) -> None:
    """Answer with the earlier response (raises, so Eve does nothing more)."""
    saved = record.get("response") or _rebuilt(db, record)
    reply = Response(saved["body"], status=saved["status"], content_type=saved["content_type"])
    reply.headers["Idempotent-Replayed"] = "true"
    if saved.get("location"):
        reply.headers["Location"] = saved["location"]
    raise HTTPException(response=reply)


def _rebuilt(db: Any, record: dict[str, Any]) -> dict[str, Any]:
    """The response Eve gave, from the stored documents (the answer itself was lost)."""
    resource, config = record["resource"], current_app.config
    title = config["DOMAIN"][resource]["item_title"]
    docs = {d["_id"]: d for d in db[resource].find({"_id": {"$in": record["document_ids"]}})}
    items = [
        {
            "_id": str(i),
            "_updated": _date(docs[i]["_updated"]),
            "_created": _date(docs[i]["_created"]),
            "_etag": docs[i].get("_etag"),
            "_links": {"self": {"title": title, "href": f"{resource}/{i}"}},
            "_status": "OK",
        }
        for i in record["document_ids"]
    ]
    body = items[0] if len(items) == 1 else {"_status": "OK", "_items": items}
    location = f"{request.host_url.rstrip('/')}/{resource}/{record['document_ids'][0]}"
    return {"status": 201, "body": json.dumps(body), "content_type": "application/json", "location": location}


def _absolute(location: str | None) -> str | None:
    return urljoin(request.host_url, location) if location else None


def _stored(db: Any, record: dict[str, Any]) -> bool:
    ids = record.get("document_ids") or []
    return bool(ids) and db[record["resource"]].count_documents({"_id": {"$in": ids}}) == len(ids)


def _set(db: Any, record: dict[str, Any], changes: dict[str, Any]) -> None:
    db[COLLECTION].update_one(_mine(record), {"$set": changes})


def _mine(record: dict[str, Any]) -> dict[str, Any]:
    """This request's claim on the key (a takeover changes ``attempt``)."""
    return {k: record[k] for k in ("caller", "resource", "key", "attempt")}


def _date(moment: datetime) -> str:
    return moment.strftime(current_app.config["DATE_FORMAT"])


def _setting(name: str, default: int) -> int:
    return int(current_app.config.get(name, default))


def _db() -> Any:
    return current_app.data.driver.db
