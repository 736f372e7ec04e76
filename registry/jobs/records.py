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

import contextlib
import hashlib
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

from registry.ops import request_ids
from registry.store import embedded
from registry.store.clock import utcnow  # noqa: F401 - the jobs' clock (aware UTC), imported from here

COLLECTION = "jobs"
DEDUP_INDEX = "queued_dedup_unique"
RACE_RETRIES = 5


def _touch(now: datetime) -> dict[str, Any]:
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
    new = _new_fields(params, owner, max_attempts, backend, now)
    for _ in range(RACE_RETRIES):
        existing = jobs.find_one({"kind": kind, "subject": subject, "input_keys": input_key})
        if existing is not None:
            return existing, False
        try:
            job = jobs.find_one_and_update(
                {"kind": kind, "subject": subject, "dedup_key": key, "status": "queued"},
                {
                    "$set": {"input_key": input_key, **_touch(now)},
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


def _new_fields(
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


# (kind, subject, input_key, params, owner)
JobRequest = tuple[str, str, str, dict[str, Any], dict[str, str]]


def find_or_create_many(
    db: Any, requests: list[JobRequest], *, max_attempts: int, backend: str, now: datetime
) -> list[tuple[dict[str, Any], bool]]:
    """:func:`find_or_create` for many jobs in a few store calls: one read finds
    the jobs that exist, one ``insert_many`` creates the rest. A bulk of new
    devices (a VEN registering 200 resources) queued its 400 jobs one upsert at
    a time, each a scan on the embedded store (seconds, growing with the
    collection). Anything the bulk path cannot settle (a queued job to absorb
    into, a race lost on the unique index) takes the one-by-one path."""
    jobs = db[COLLECTION]
    embedded_store = getattr(jobs, "embedded", False)
    # on the embedded store the read and the insert are one write, as the unique
    # index makes them on MongoDB; mongomock's own per-document re-check (a scan
    # of the collection for each job) is skipped: the keys were just checked
    with embedded.EMBEDDED_WRITE_LOCK if embedded_store else contextlib.nullcontext():
        existing, queued = _known(jobs, requests)
        fresh = _fresh_jobs(requests, existing, queued, max_attempts=max_attempts, backend=backend, now=now)
        if embedded_store:
            with embedded.unique_checks_skipped(jobs):
                inserted = _insert_ignoring_duplicates(jobs, list(fresh.values()))
        else:
            inserted = _insert_ignoring_duplicates(jobs, list(fresh.values()))
    results = []
    for index, (kind, subject, input_key, params, owner) in enumerate(requests):
        doc = fresh.get(index)
        if doc is not None and id(doc) in inserted:
            results.append((doc, True))
        elif (kind, subject, input_key) in existing:
            results.append((existing[(kind, subject, input_key)], False))
        else:
            results.append(
                find_or_create(db, kind, subject, input_key, params=params, owner=owner,
                               max_attempts=max_attempts, backend=backend, now=now)
            )  # fmt: skip
    return results


def _known(jobs: Any, requests: list[JobRequest]) -> tuple[dict[tuple[str, str, str], dict[str, Any]], set[str]]:
    """The stored jobs of these requests by (kind, subject, input key), and the
    dedup keys of those queued."""
    existing: dict[tuple[str, str, str], dict[str, Any]] = {}
    queued: set[str] = set()
    if not requests:
        return existing, queued
    kinds, subjects = sorted({r[0] for r in requests}), sorted({r[1] for r in requests})
    for job in jobs.find({"kind": {"$in": kinds}, "subject": {"$in": subjects}}):
        for input_key in job.get("input_keys", []):
            existing[(job["kind"], job["subject"], input_key)] = job
        if job.get("status") == "queued":
            queued.add(job["dedup_key"])
    return existing, queued


def _fresh_jobs(
    requests: list[JobRequest],
    existing: dict[tuple[str, str, str], dict[str, Any]],
    queued: set[str],
    **fields: Any,
) -> dict[int, dict[str, Any]]:
    """The jobs to create, by request index: neither stored nor absorbed by a queued one."""
    fresh: dict[int, dict[str, Any]] = {}
    for index, (kind, subject, input_key, params, owner) in enumerate(requests):
        key = dedup_key(kind, subject, params)
        if (kind, subject, input_key) in existing or key in queued:
            continue
        queued.add(key)
        fresh[index] = {
            "kind": kind, "subject": subject, "dedup_key": key, "status": "queued", "input_key": input_key,
            "input_keys": [input_key], "triggers": 1, **_touch(fields["now"]),
            **_new_fields(params, owner, fields["max_attempts"], fields["backend"], fields["now"]),
        }  # fmt: skip
    return fresh


def _insert_ignoring_duplicates(jobs: Any, docs: list[dict[str, Any]]) -> set[int]:
    """Insert what the unique index lets in; the ids (``id()``) of the documents stored."""
    if not docs:
        return set()
    try:
        jobs.insert_many(docs, ordered=False)
        return {id(d) for d in docs}
    except BulkWriteError as error:
        refused = {e["index"] for e in error.details.get("writeErrors", [])}
        return {id(d) for i, d in enumerate(docs) if i not in refused}


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
        {"$set": {"status": "running", "started_at": now, "finished_at": None, **_touch(now)}, "$inc": {"attempts": 1}},
        return_document=ReturnDocument.AFTER,
    )


def finish(db: Any, job: dict[str, Any], result_url: str | None, now: datetime) -> None:
    update = {"status": "done", "finished_at": now, "error": None, **_touch(now)}
    if result_url:
        update["result_url"] = result_url
    db[COLLECTION].update_one({"_id": job["_id"], "status": "running"}, {"$set": update})


def backoff(attempts: int, base_seconds: int) -> timedelta:
    """The wait before retry number ``attempts``: base, 2 x base, 4 x base, …"""
    return timedelta(seconds=base_seconds * 2 ** max(0, attempts - 1))


def fail(db: Any, job: dict[str, Any], error: str, permanent: bool, base_seconds: int, now: datetime) -> dict[str, Any]:
    """running -> queued (with back-off) while attempts remain, else -> failed."""
    retry = not permanent and job["attempts"] < job["max_attempts"]
    update: dict[str, Any] = {"error": error[:2000], **_touch(now)}
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
            "error": f"worker lost while running (started {job['started_at']:%Y-%m-%dT%H:%M:%SZ})",
            **_touch(now),
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
