"""Aggregator advice on request: ask, then poll (docs/jobs.md).

    POST /advice-requests {target_kw, start, end, direction[, point, radius_km]}
        -> 202, Location: the job URL; body links the job and the result
    GET  /advice-requests/<job_id>          202 while queued / running, then 200
    GET  /advice-requests/<job_id>/result   202 while queued / running, 200 with
                                            the advice, 422 if the job failed

Same bearer tokens and the same scoping as the API: an aggregator asks about,
and sees, only its own portfolio and its own requests (another's is a 404).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from cerberus import Validator
from eve import Eve
from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import abort as flask_abort

from registry import jobs
from registry.auth.bearer import authenticated
from registry.store.clock import as_utc
from schemas.vocabulary import DATE_FORMAT, JOB_STATUSES

bp = Blueprint("advice_requests", __name__)
KIND = "aggregator_advice"
ROLES = frozenset({"aggregator", "service", "admin"})
PENDING = frozenset({"queued", "running"})
REQUEST_SCHEMA: dict[str, Any] = {
    "target_kw": {"type": "number", "min": 0.001, "max": 1e7, "required": True},
    "start": {"type": "string", "required": True, "maxlength": 40},
    "end": {"type": "string", "required": True, "maxlength": 40},
    "direction": {"type": "string", "allowed": ["up", "down"], "required": True},
    # [longitude, latitude], as in GeoJSON
    "point": {
        "type": "list",
        "items": [{"type": "number", "min": -180, "max": 180}, {"type": "number", "min": -90, "max": 90}],
    },
    "radius_km": {"type": "number", "min": 0, "max": 20000, "dependencies": "point"},
    "aggregator_id": {"type": "string", "minlength": 3, "maxlength": 256},
}


def error(code: int, message: str, **extra: Any) -> None:
    response = jsonify({"_status": "ERR", "_error": {"code": code, "message": message}, **extra})
    response.status_code = code
    flask_abort(response)


def caller() -> Any:
    """The validated caller (401 / 403 exactly as on the Eve resources)."""
    who = authenticated()
    if who.role not in ROLES:
        error(403, f"a {who.role} may not request aggregator advice")
    return who


def parse_request(who: Any) -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        error(400, "the request body must be a JSON object")
    validator = Validator(REQUEST_SCHEMA)
    if not validator.validate(body):
        error(422, "invalid advice request", _issues=validator.errors)
    params = dict(body)
    for field in ("start", "end"):
        try:
            params[field] = as_utc(body[field]).strftime(DATE_FORMAT)
        except ValueError:
            error(422, f"{field} must be a UTC ISO 8601 time, e.g. 2026-01-15T17:00:00Z")
    if params["end"] <= params["start"]:
        error(422, "end must be after start")
    if "radius_km" in params and "point" not in params:
        error(422, "radius_km needs a point")
    params["target_kw"] = float(params["target_kw"])
    params["aggregator_id"] = portfolio_of(who, body.get("aggregator_id"))
    return params


def portfolio_of(who: Any, asked: str | None) -> str:
    if who.role == "aggregator":
        if asked not in (None, who.aggregator_id):
            error(403, f"aggregator_id must be your own ({who.aggregator_id})")
        if not who.aggregator_id:
            error(403, "your token carries no aggregator_id; an aggregator token needs one")
        return who.aggregator_id
    if not asked:
        error(422, "a service or admin must name the aggregator_id whose portfolio to consider")
    return asked


def request_key(params: dict[str, Any]) -> str:
    """The same request is the same job: within the hour, or under one Idempotency-Key."""
    text = json.dumps(params, sort_keys=True)
    key = request.headers.get("Idempotency-Key") or datetime.utcnow().strftime("%Y-%m-%dT%H")
    return hashlib.sha1(f"{text}|{key}".encode()).hexdigest()


def links(job_id: Any) -> dict[str, Any]:
    return {
        "job": {"href": f"/advice-requests/{job_id}"},
        "result": {"href": f"/advice-requests/{job_id}/result"},
        "jobs_item": {"href": f"/jobs/{job_id}"},
    }


@bp.post("/advice-requests")
def create() -> Response:
    who = caller()
    params = parse_request(who)
    aggregator_id = params.pop("aggregator_id")
    job = jobs.enqueue(KIND, aggregator_id, request_key(params), params=params, owner={"aggregator_id": aggregator_id})
    return pending(job, summary(job))


def find_job(job_id: str) -> dict[str, Any]:
    caller()
    try:
        spec: dict[str, Any] = {"_id": ObjectId(job_id), "kind": KIND}
    except InvalidId:
        error(404, "no such advice request")
    # the caller's scope, as the access policy gave it to the data layer (registry/hooks/access.py)
    job = current_app.data.driver.db["jobs"].find_one({**spec, **(current_app.data.scope_filter("jobs") or {})})
    if job is None:
        error(404, "no such advice request")
    return job


@bp.get("/advice-requests/<job_id>")
def status(job_id: str) -> Response:
    job = find_job(job_id)
    return pending(job, summary(job)) if job["status"] in PENDING else jsonify(summary(job))


@bp.get("/advice-requests/<job_id>/result")
def result(job_id: str) -> Response:
    job = find_job(job_id)
    if job["status"] in PENDING:
        return pending(job, summary(job))
    if job["status"] == "failed":
        error(422, f"the advice could not be computed: {job.get('error')}", _links=links(job["_id"]))
    advice = current_app.data.driver.db["advice"].find_one({"job_id": job["_id"]})
    if advice is None:
        error(404, "the advice of this request was deleted")
    return jsonify(plain({**advice, "_links": links(job["_id"])}))


def pending(job: dict[str, Any], body: dict[str, Any]) -> Response:
    response = jsonify(body)
    response.status_code = 202
    response.headers["Location"] = f"/advice-requests/{job['_id']}"
    return response


def summary(job: dict[str, Any]) -> dict[str, Any]:
    fields = (
        "kind",
        "subject",
        "status",
        "attempts",
        "params",
        "queued_at",
        "started_at",
        "finished_at",
        "error",
        "result_url",
        "aggregator_id",
    )
    return plain({"_id": job["_id"], **{f: job.get(f) for f in fields}, "_links": links(job["_id"])})


def plain(value: Any) -> Any:
    """JSON-ready: ObjectIds as strings, datetimes as the API's UTC format."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, datetime):
        return value.strftime(DATE_FORMAT)
    return value


def _error_responses(*codes: str) -> dict[str, Any]:
    return {code: {"$ref": "#/components/responses/error"} for code in codes}


JOB_SUMMARY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "_id": {"type": "string"},
        "kind": {"type": "string"},
        "subject": {"type": "string"},
        "status": {"type": "string", "enum": list(JOB_STATUSES)},
        "attempts": {"type": "integer"},
        "params": {"type": "object"},
        "error": {"type": ["string", "null"]},
        "_links": {"type": "object"},
    },
}
JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[a-f0-9]{24}$"}}


def openapi_paths() -> dict[str, Any]:
    """These routes in the OpenAPI document (they are not Eve resources, so
    eve-swagger does not know them)."""
    body = {
        "type": "object",
        "required": ["target_kw", "start", "end", "direction"],
        "properties": {
            "target_kw": {"type": "number", "minimum": 0.001, "maximum": 1e7},
            "start": {"type": "string", "format": "date-time", "maxLength": 40},
            "end": {"type": "string", "format": "date-time", "maxLength": 40},
            "direction": {"type": "string", "enum": ["up", "down"]},
            "point": {
                "type": "array",
                "minItems": 2,
                "maxItems": 2,
                "items": {"type": "number"},
                "description": "[longitude, latitude]",
            },
            "radius_km": {"type": "number", "minimum": 0, "maximum": 20000},
            "aggregator_id": {"type": "string", "minLength": 3, "maxLength": 256},
        },
    }
    accepted = {
        "description": "queued or running; poll the Location",
        "content": {"application/json": {"schema": JOB_SUMMARY}},
    }
    tag = ["advice-requests"]
    return {
        "/advice-requests": {
            "post": {
                "summary": "Ask for a recommended device set for a target (aggregators)",
                "tags": tag,
                "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
                "responses": {"202": accepted, **_error_responses("400", "401", "403", "413", "415", "422", "429")},
            }
        },
        "/advice-requests/{job_id}": {
            "get": {
                "summary": "The request's job",
                "tags": tag,
                "parameters": [JOB_ID],
                "responses": {
                    "200": {"description": "done or failed", "content": {"application/json": {"schema": JOB_SUMMARY}}},
                    "202": accepted,
                    **_error_responses("401", "403", "404", "429"),
                },
            }
        },
        "/advice-requests/{job_id}/result": {
            "get": {
                "summary": "The advice, once the job is done",
                "tags": tag,
                "parameters": [JOB_ID],
                "responses": {
                    "200": {
                        "description": "the aggregator advice",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "202": accepted,
                    **_error_responses("401", "403", "404", "422", "429"),
                },
            }
        },
    }


def init_app(app: Eve) -> None:
    app.register_blueprint(bp)
