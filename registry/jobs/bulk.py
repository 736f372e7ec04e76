"""Many jobs at once: :func:`find_or_create_many`, the bulk form of
:func:`registry.jobs.records.find_or_create` (same rules, fewer store calls)."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from registry.jobs import records
from registry.store import embedded

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
    jobs = db[records.COLLECTION]
    embedded_store = getattr(jobs, "embedded", False)
    # on the embedded store the read and the insert are one write, as the unique
    # index makes them on MongoDB; mongomock's own per-document re-check (a scan
    # of the collection for each job) is skipped: the keys were just checked
    with embedded.EMBEDDED_WRITE_LOCK if embedded_store else contextlib.nullcontext():
        existing, queued = _known(jobs, requests)
        absorbing = {i: queued.get(records.dedup_key(r[0], r[1], r[3])) for i, r in _new_requests(requests, existing)}
        absorbing = {i: job for i, job in absorbing.items() if job is not None}  # into a queued job
        fresh = _fresh_jobs(requests, existing, set(queued), max_attempts=max_attempts, backend=backend, now=now)
        if embedded_store:
            with embedded.unique_checks_skipped(jobs):
                inserted = _insert_ignoring_duplicates(jobs, list(fresh.values()))
        else:
            inserted = _insert_ignoring_duplicates(jobs, list(fresh.values()))
        absorbed = _absorb(jobs, requests, absorbing, now)
    results = []
    for index, (kind, subject, input_key, params, owner) in enumerate(requests):
        doc = fresh.get(index)
        if doc is not None and id(doc) in inserted:
            results.append((doc, True))
        elif (kind, subject, input_key) in existing:
            results.append((existing[(kind, subject, input_key)], False))
        elif index in absorbed:
            results.append((absorbed[index], False))
        else:
            results.append(
                records.find_or_create(db, kind, subject, input_key, params=params, owner=owner,
                               max_attempts=max_attempts, backend=backend, now=now)
            )  # fmt: skip
    return results


def _known(
    jobs: Any, requests: list[JobRequest]
) -> tuple[dict[tuple[str, str, str], dict[str, Any]], dict[str, dict[str, Any]]]:
    """The stored jobs of these requests by (kind, subject, input key), and the
    queued ones by dedup key."""
    existing: dict[tuple[str, str, str], dict[str, Any]] = {}
    queued: dict[str, dict[str, Any]] = {}
    if not requests:
        return existing, queued
    kinds, subjects = sorted({r[0] for r in requests}), sorted({r[1] for r in requests})
    for job in jobs.find({"kind": {"$in": kinds}, "subject": {"$in": subjects}}):
        for input_key in job.get("input_keys", []):
            existing[(job["kind"], job["subject"], input_key)] = job
        if job.get("status") == "queued":
            queued[job["dedup_key"]] = job
    return existing, queued


def _new_requests(
    requests: list[JobRequest], existing: dict[tuple[str, str, str], dict[str, Any]]
) -> list[tuple[int, JobRequest]]:
    """The requests no stored job has answered yet (by their input key)."""
    return [(i, r) for i, r in enumerate(requests) if (r[0], r[1], r[2]) not in existing]


def _absorb(
    jobs: Any, requests: list[JobRequest], absorbing: dict[int, dict[str, Any]], now: datetime
) -> dict[int, dict[str, Any]]:
    """Add the input keys of ``absorbing`` (request index -> its queued job) to those
    jobs in one bulk write, as :func:`records.find_or_create` does one at a time;
    the jobs as stored after it, by request index. A job that left the queue
    meanwhile is not updated (its request then takes the one-by-one path)."""
    keys_of: dict[Any, list[str]] = {}
    for index, job in absorbing.items():
        keys_of.setdefault(job["_id"], []).append(requests[index][2])
    if not keys_of:
        return {}
    updates = [
        (
            {"_id": job_id, "status": "queued"},
            {
                "$set": {"input_key": keys[-1], **records.touch(now)},
                "$addToSet": {"input_keys": {"$each": keys}},
                "$inc": {"triggers": len(keys)},
            },
        )
        for job_id, keys in keys_of.items()
    ]
    if getattr(jobs, "embedded", False):  # mongomock's bulk_write rejects pymongo 4's UpdateOne
        for spec, update in updates:
            jobs.update_one(spec, update)  # by _id: indexed (registry.store.embedded_index)
    else:
        jobs.bulk_write([UpdateOne(spec, update) for spec, update in updates], ordered=False)
    stored = {job["_id"]: job for job in jobs.find({"_id": {"$in": list(keys_of)}})}
    return {
        index: stored[job["_id"]]
        for index, job in absorbing.items()
        if requests[index][2] in stored.get(job["_id"], {}).get("input_keys", ())
    }


def _fresh_jobs(
    requests: list[JobRequest],
    existing: dict[tuple[str, str, str], dict[str, Any]],
    queued: set[str],
    **fields: Any,
) -> dict[int, dict[str, Any]]:
    """The jobs to create, by request index: neither stored nor absorbed by a queued one."""
    fresh: dict[int, dict[str, Any]] = {}
    for index, (kind, subject, input_key, params, owner) in enumerate(requests):
        key = records.dedup_key(kind, subject, params)
        if (kind, subject, input_key) in existing or key in queued:
            continue
        queued.add(key)
        fresh[index] = {
            "kind": kind, "subject": subject, "dedup_key": key, "status": "queued", "input_key": input_key,
            "input_keys": [input_key], "triggers": 1, **records.touch(fields["now"]),
            **records.new_fields(params, owner, fields["max_attempts"], fields["backend"], fields["now"]),
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
