"""The marketplace panels: offers (prosumers create and withdraw,
aggregators browse and contract) and contracts (accept, reject, cancel;
settlement figures). Fields follow docs/contract.md, "Marketplace resources"."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for

from registry.admin_ui.blueprint import api, back, bp, failure, listing
from registry.admin_ui.login import User, login_required
from registry.admin_ui.queries import (
    api_time,
    bounded_number,
    check_page,
    default_window,
    page_count,
    page_number,
    without_page,
)
from registry.market.rules import CONTRACT_TRANSITIONS, SYSTEM
from schemas.policy import METHODS
from schemas.vocabulary import CONTRACT_STATUSES, OFFER_STATUSES

PER_PAGE = 25
# what the offers / contracts schemas accept, as the forms' min / max
LIMITS = {"power_kw": (0.001, 100000), "price": (0, 100000)}
LABELS = {"power_kw": ("Power", " kW"), "price": ("Price", " per kWh")}
# action -> (new status, roles, statuses it applies to), read from the lifecycle's table
CONTRACT_ACTIONS = {
    action: (
        target,
        set().union(*(r.actors for (_, to), r in CONTRACT_TRANSITIONS.items() if to == target)) - {SYSTEM},
        {start for (start, to) in CONTRACT_TRANSITIONS if to == target},
    )
    for action, target in (("accept", "accepted"), ("reject", "rejected"), ("cancel", "cancelled"))
}


def _listing(user: User, resource: str, statuses: tuple[str, ...], sort: str) -> tuple[Any, dict]:
    """GET a market resource with the panel's status filter and paging."""
    status = request.args.get("status", "")
    where = {"status": status} if status in statuses else {}
    if resource == "offers" and request.args.get("direction") in ("up", "down"):
        where["direction"] = request.args["direction"]
    current = page_number(request.args)
    result = api(user).listing(resource, where=where, sort=sort, max_results=PER_PAGE, page=current)
    pages = page_count(result.total, PER_PAGE)
    if result.ok:
        check_page(current, pages)
    return result, {
        "page": current,
        "pages": pages,
        "args": without_page(request.args),
        "status": status,
        "statuses": statuses,
    }


@bp.get("/offers")
@login_required
def offers(user: User) -> Any:
    client = api(user)
    result, paging = _listing(user, "offers", OFFER_STATUSES, "-start")
    if not result.ok:
        return failure(result, "The offers could not be listed")
    own_devices = []
    if user.role == "prosumer":
        mine = client.get("devices", where={"marketplace_availability": "yes"}, sort="device_name", max_results=100)
        own_devices = mine.items
    start, end = default_window()
    return listing(
        "offers.html",
        "offers",
        result.unreadable,
        offers=result.items,
        total=result.total,
        own_devices=own_devices,
        limits=LIMITS,
        can_contract="POST" in METHODS["contracts"].get(user.role, ()),
        default_start=start,
        default_end=end,
        form=request.args,
        **paging,
    )


@bp.post("/offers")
@login_required
def create_offer(user: User) -> Any:
    form = request.form
    body, problems = _offer_body(form)
    if problems:
        for problem in problems:
            flash(problem, "error")
        return redirect(url_for("admin_ui.offers"))
    result = api(user).post("offers", body)
    flash("Offer published." if result.ok else result.message, "info" if result.ok else "error")
    return redirect(url_for("admin_ui.offers"))


def _offer_body(form: Any) -> tuple[dict[str, Any], list[str]]:
    problems: list[str] = []
    start, end = api_time(form.get("start", "")), api_time(form.get("end", ""))
    if not start or not end:
        problems.append("Start and end need a date and a time (UTC).")
    numbers = {}
    for name, (low, high) in LIMITS.items():
        label, unit = LABELS[name]
        value, problem = bounded_number(form.get(name, ""), label, low, high, unit)
        if problem:
            problems.append(problem)
        else:
            numbers[name] = value
    body = {
        "device_id": form.get("device_id", ""),
        "start": start,
        "end": end,
        "direction": form.get("direction", "up"),
        "currency": form.get("currency", "EUR") or "EUR",
        **numbers,
    }
    return body, problems


@bp.post("/offers/<offer_id>/withdraw")
@login_required
def withdraw_offer(user: User, offer_id: str) -> Any:
    result = api(user).patch(f"offers/{offer_id}", {"status": "withdrawn"}, request.form.get("etag", ""))
    flash("Offer withdrawn." if result.ok else result.message, "info" if result.ok else "error")
    return back("admin_ui.offers")


@bp.post("/offers/<offer_id>/contract")
@login_required
def contract_offer(user: User, offer_id: str) -> Any:
    form = request.form
    body, problems = _offer_body(form)
    if problems:
        for problem in problems:
            flash(problem, "error")
        return back("admin_ui.offers")
    # an aggregator contracts for itself; an admin for the offer's aggregator
    contract = {
        "offers": [offer_id],
        "aggregator_id": user.aggregator_id or form.get("aggregator_id", ""),
        "start": body["start"],
        "end": body["end"],
        "power_kw": body["power_kw"],
        "price": body["price"],
    }
    client = api(user)
    result = client.post("contracts", contract)
    if result.ok:
        # the POST answer carries only meta fields; the status is the news
        stored = client.get(f"contracts/{result.body.get('_id')}")
        flash(f"Contract {stored.body.get('status', 'created')}.", "info")
        return redirect(url_for("admin_ui.contracts"))
    flash(result.message, "error")
    return back("admin_ui.offers")


@bp.get("/contracts")
@login_required
def contracts(user: User) -> Any:
    result, paging = _listing(user, "contracts", CONTRACT_STATUSES, "-start")
    if not result.ok:
        return failure(result, "The contracts could not be listed")
    actions = {
        c.get("_id"): [
            a for a, (_, roles, states) in CONTRACT_ACTIONS.items() if user.role in roles and c.get("status") in states
        ]
        for c in result.items
    }
    return listing(
        "contracts.html",
        "contracts",
        result.unreadable,
        contracts=result.items,
        total=result.total,
        actions=actions,
        **paging,
    )


@bp.post("/contracts/<contract_id>/<action>")
@login_required
def contract_action(user: User, contract_id: str, action: str) -> Any:
    if action not in CONTRACT_ACTIONS:
        flash(f"Unknown action “{action}”.", "error")
        return back("admin_ui.contracts")
    status = CONTRACT_ACTIONS[action][0]
    result = api(user).patch(f"contracts/{contract_id}", {"status": status}, request.form.get("etag", ""))
    flash(f"Contract {status}." if result.ok else result.message, "info" if result.ok else "error")
    return back("admin_ui.contracts")
