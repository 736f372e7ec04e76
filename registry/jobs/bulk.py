"""Many jobs at once: :func:`find_or_create_many`, the bulk form of
:func:`registry.jobs.records.find_or_create` (same rules, fewer store calls)."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

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
                records.find_or_create(db, kind, subject, input_key, params=params, owner=owner,
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
