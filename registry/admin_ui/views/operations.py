"""Advice (a prosumer's day timeline, an aggregator's recommended devices),
and for admins the job queue and the audit trail (Eve's oplog)."""

from __future__ import annotations

from typing import Any

from flask import request

from registry.admin_ui.blueprint import api, bp, failure, listing
from registry.admin_ui.login import User, login_required
from registry.admin_ui.queries import page_number, pager, without_page
from registry.admin_ui.series import advice_timeline, recommended_devices
from schemas.vocabulary import JOB_STATUSES, TAG_WORDS

PER_PAGE = 25


@bp.get("/advice")
@login_required
def advice(user: User) -> Any:
    result = api(user).listing("advice", sort="-_created", max_results=10)
    if not result.ok:
        return failure(result, "The advice could not be read")
    entries = [
        {"doc": doc, "timeline": advice_timeline(doc), "devices": recommended_devices(doc)} for doc in result.items
    ]
    return listing("advice.html", "entries", result.unreadable, entries=entries, tag_words=TAG_WORDS)


@bp.get("/jobs")
@login_required
def jobs(user: User) -> Any:
    client = api(user)
    status = request.args.get("status", "")
    where = {"status": status} if status in JOB_STATUSES else {}
    current = page_number(request.args)
    result = client.listing("jobs", where=where, sort="-_created", max_results=PER_PAGE, page=current)
    if not result.ok:
        return failure(result, "The jobs could not be listed")
    return listing(
        "jobs.html",
        "jobs",
        result.unreadable,
        jobs=result.items,
        status=status,
        statuses=JOB_STATUSES,
        args=without_page(request.args),
        **pager(result.total, current, PER_PAGE),
    )


@bp.get("/audit")
@login_required
def audit(user: User) -> Any:
    current = page_number(request.args)
    result = api(user).listing("oplog", sort="-_created", max_results=PER_PAGE, page=current)
    if not result.ok:
        return failure(result, "The audit trail could not be read")
    context = pager(result.total, current, PER_PAGE)
    return listing("audit.html", "entries", result.unreadable, entries=result.items, args={}, **context)
