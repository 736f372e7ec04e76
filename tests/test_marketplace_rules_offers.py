"""Marketplace rules for windows and offers, as pure functions (no app, no store): a
window is in the future, on 15-minute slots and at most a week long; a new offer
copies its device's owners and location; an open offer changes price or power or is
withdrawn, and every other change is refused with its status."""

from __future__ import annotations

from datetime import timedelta

import pytest

from registry.market.rules import check_new_offer, check_offer_update, check_window, slot_starts
from tests.factories import device
from tests.support.market_rule_inputs import END, NOW, START, an_offer, refusal

# windows ------------------------------------------------------------------------------------


def test_a_valid_window_passes_and_has_15_minute_slots():
    check_window(START, END, NOW)
    assert slot_starts(START, END) == [START + timedelta(minutes=m) for m in (0, 15, 30, 45)]


@pytest.mark.parametrize(
    "start,end,words",
    [
        (END, START, "before end"),
        (START, START, "before end"),
        (START + timedelta(minutes=5), END, "15-minute"),
        (START, END + timedelta(seconds=30), "15-minute"),
        (NOW - timedelta(hours=1, minutes=7), END, "future"),
        (START, START + timedelta(days=7, minutes=15), "at most 168 hours"),
    ],
)
def test_bad_windows_are_422(start, end, words):
    error = refusal(check_window, start, end, NOW)
    assert error.status == 422 and words in error.message


# offers ------------------------------------------------------------------------------------


def test_new_offer_copies_owners_and_location():
    dev = device()
    copied = check_new_offer(an_offer(dev), dev, NOW)
    assert copied == {
        "status": "open",
        "account_id": dev["account_id"],
        "aggregator_id": dev["aggregator_id"],
        "location": dev["location"],
    }


@pytest.mark.parametrize(
    "dev_overrides,offer_overrides,status,words",
    [
        ({"marketplace_availability": "no"}, {}, 409, "not available to the marketplace"),
        ({"marketplace_availability": None}, {}, 409, "not available to the marketplace"),
        ({"max_capacity": 1.5}, {}, 422, "max_capacity"),
        ({}, {"status": "contracted"}, 422, "always open"),
        ({}, {"start": NOW}, 422, "15-minute"),
    ],
)
def test_new_offer_refusals(dev_overrides, offer_overrides, status, words):
    dev = device(**dev_overrides)
    error = refusal(check_new_offer, an_offer(dev, **offer_overrides), dev, NOW)
    assert (error.status, words in error.message) == (status, True)


@pytest.mark.parametrize(
    "updates,actor",
    [
        ({"price": 0.4}, "prosumer"),
        ({"power_kw": 3.0}, "prosumer"),
        ({"status": "withdrawn"}, "prosumer"),
        ({"status": "withdrawn"}, "admin"),
        ({"status": "open", "price": 0.1, "_updated": NOW}, "prosumer"),
    ],
)
def test_open_offers_change_price_power_or_are_withdrawn(updates, actor):
    dev = device()
    check_offer_update(an_offer(dev), updates, actor, dev, NOW)


@pytest.mark.parametrize(
    "original,updates,actor,status,words",
    [
        ({}, {"start": START}, "prosumer", 422, "start cannot change"),
        ({}, {"device_id": "x", "direction": "up"}, "admin", 422, "device_id, direction cannot change"),
        ({"status": "contracted"}, {"price": 1.0}, "prosumer", 409, "only open offers"),
        ({"status": "withdrawn"}, {"status": "open"}, "prosumer", 409, "only open offers"),
        ({}, {"status": "contracted"}, "prosumer", 403, "may not move"),
        ({}, {"status": "expired"}, "admin", 403, "may not move"),
        ({}, {"status": "withdrawn"}, "aggregator", 403, "may not move"),
        ({}, {"power_kw": 9.0}, "prosumer", 422, "max_capacity"),
    ],
)
def test_offer_update_refusals(original, updates, actor, status, words):
    dev = device()
    error = refusal(check_offer_update, an_offer(dev, **original), updates, actor, dev, NOW)
    assert error.status == status and words in error.message, error.message
