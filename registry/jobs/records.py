"""The `jobs` collection: how a job is found, created, claimed and closed.

Every change is one atomic store operation, so API processes and any number
of workers can share the collection:

* find_or_create: the same kind + subject + input key is the same job
  (idempotent); a queued job of the same kind, subject and params absorbs a
  new trigger instead of a second job being made (debouncing). A partial
  unique index on ``dedup_key`` among queued jobs makes that hold when
  processes race (an upsert is not atomic against another upsert): the loser
  gets a duplicate key error and retries, finding the winner's job;
* claim: queued and due -> running (compare-and-set: one worker wins);
* finish / fail: running -> done, or -> queued again with an exponential
  back-off while attempts remain, else -> failed with the error. A job that
  would go back to the queue while another job with its dedup key is queued
  is folded into that one instead.

Documents carry Eve's meta fields, so they read like any other resource.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from registry.ops import request_ids
from registry.store.clock import utcnow  # noqa: F401 - the jobs' clock (aware UTC), imported from here
from schemas.vocabulary import DATE_FORMAT

COLLECTION = "jobs"
DEDUP_INDEX = "queued_dedup_unique"
RACE_RETRIES = 5


def touch(now: datetime) -> dict[str, Any]:
    # jobs are read-only through the API: a fresh token is a valid ETag
    return {"_updated": now, "_etag": uuid.uuid4().hex}


def dedup_key(kind: str, subject: str, params: dict[str, Any]) -> str:
    """Jobs with the same key compute the same thing from the store: one queued is enough."""
    text = json.dumps(params, sort_keys=True, default=str)
    return f"{kind}|{subject}|{hashlib.sha1(text.encode()).hexdigest()[:16]}"


def find_or_create(
    db: Any,
    kind: str,
    subject: str,
    input_key: str,
    *,
    params: dict[str, Any],
    owner: dict[str, str],
    max_attempts: int,
    backend: str,
    now: datetime,
) -> tuple[dict[str, Any], bool]:
    """(the job, whether it was just created)."""
    jobs = db[COLLECTION]
    key = dedup_key(kind, subject, params)
    new = new_fields(params, owner, max_attempts, backend, now)
    for _ in range(RACE_RETRIES):
        existing = jobs.find_one({"kind": kind, "subject": subject, "input_keys": input_key})
        if existing is not None:
            return existing, False
        try:
            job = jobs.find_one_and_update(
                {"kind": kind, "subject": subject, "dedup_key": key, "status": "queued"},
                {
                    "$set": {"input_key": input_key, **touch(now)},
                    "$addToSet": {"input_keys": input_key},
                    "$inc": {"triggers": 1},
                    "$setOnInsert": new,
                },
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            continue  # another process queued it between our find and our upsert: absorb into it
        return job, job["triggers"] == 1
    raise RuntimeError(f"could not queue {kind} for {subject}: {RACE_RETRIES} races lost in a row")


def new_fields(
    params: dict[str, Any], owner: dict[str, str], max_attempts: int, backend: str, now: datetime
) -> dict[str, Any]:
    return {
        "params": params,
        "attempts": 0,
        "max_attempts": max_attempts,
        "queued_at": now,
        "not_before": now,
        "started_at": None,
        "finished_at": None,
        "error": None,
        "result_url": None,
        "backend": backend,
        "_created": now,
        "request_id": request_ids.current(),
        **owner,
    }


def get(db: Any, job_id: ObjectId | str) -> dict[str, Any] | None:
    return db[COLLECTION].find_one({"_id": ObjectId(job_id)})


def due(db: Any, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Queued jobs whose back-off has passed, oldest first."""
    cursor = db[COLLECTION].find(
        {"status": "queued", "not_before": {"$lte": now}}, sort=[("not_before", 1), ("_id", 1)], limit=limit
    )
    return list(cursor)


def next_due(db: Any) -> datetime | None:
    """When the next queued job becomes due (None: nothing queued)."""
    job = db[COLLECTION].find_one({"status": "queued"}, sort=[("not_before", 1)])
    return job["not_before"] if job else None


def claim(db: Any, job_id: ObjectId, now: datetime) -> dict[str, Any] | None:
    """queued and due -> running; None when another worker won or it is not due."""
    return db[COLLECTION].find_one_and_update(
        {"_id": job_id, "status": "queued", "not_before": {"$lte": now}},
        {"$set": {"status": "running", "started_at": now, "finished_at": None, **touch(now)}, "$inc": {"attempts": 1}},
        return_document=ReturnDocument.AFTER,
    )


def finish(db: Any, job: dict[str, Any], result_url: str | None, now: datetime) -> None:
    update = {"status": "done", "finished_at": now, "error": None, **touch(now)}
    if result_url:
        update["result_url"] = result_url
    db[COLLECTION].update_one({"_id": job["_id"], "status": "running"}, {"$set": update})


def backoff(attempts: int, base_seconds: int) -> timedelta:
    """The wait before retry number ``attempts``: base, 2 x base, 4 x base, …"""
    return timedelta(seconds=base_seconds * 2 ** max(0, attempts - 1))


def fail(db: Any, job: dict[str, Any], error: str, permanent: bool, base_seconds: int, now: datetime) -> dict[str, Any]:
    """running -> queued (with back-off) while attempts remain, else -> failed."""
    retry = not permanent and job["attempts"] < job["max_attempts"]
    update: dict[str, Any] = {"error": error[:2000], **touch(now)}
    if retry:
        update.update(status="queued", not_before=now + backoff(job["attempts"], base_seconds))
    else:
        update.update(status="failed", finished_at=now)
    return leave_running(db, job, update, now) or job


def leave_running(db: Any, job: dict[str, Any], update: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """running -> ``update``. Back to the queue while a job with the same dedup key is
    queued would break the unique index: that job takes this one's input keys (it
    reads the store when it runs) and this one fails, naming it."""
    jobs = db[COLLECTION]
    for _ in range(RACE_RETRIES):
        try:
            return jobs.find_one_and_update(
                {"_id": job["_id"], "status": "running"}, {"$set": update}, return_document=ReturnDocument.AFTER
            )
        except DuplicateKeyError:
            other = jobs.find_one_and_update(
                {"dedup_key": job.get("dedup_key"), "status": "queued"},
                {"$addToSet": {"input_keys": {"$each": job.get("input_keys") or []}}, "$inc": {"triggers": 1}},
                return_document=ReturnDocument.AFTER,
            )
        if other is not None:  # else it was claimed meanwhile: queue this one after all
            update = {
                **update,
                "status": "failed",
                "finished_at": now,
                "error": f"{update['error']}; retried as job {other['_id']}",
            }
    return None


def requeue_stale(db: Any, stale_seconds: int, now: datetime) -> int:
    """Jobs left running by a worker that died: try again (or fail when out of attempts)."""
    lost = now - timedelta(seconds=stale_seconds)
    moved = 0
    for job in db[COLLECTION].find({"status": "running", "started_at": {"$lt": lost}}):
        out_of_attempts = job["attempts"] >= job["max_attempts"]
        update = {
            "status": "failed" if out_of_attempts else "queued",
            "not_before": now,
            "error": f"worker lost while running (started {job['started_at']:{DATE_FORMAT}})",
            **touch(now),
        }
        if out_of_attempts:
            update["finished_at"] = now
        moved += leave_running(db, job, update, now) is not None
    return moved


def ensure_indexes(db: Any) -> None:
    """The de-duplication index (the lookup indexes come from schemas/jobs.py; creating
    them again under another name is an error on MongoDB)."""
    db[COLLECTION].create_index(
        [("dedup_key", 1)],
        name=DEDUP_INDEX,
        unique=True,
        partialFilterExpression={"status": "queued", "dedup_key": {"$exists": True}},
    )
