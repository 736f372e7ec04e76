"""What tests/test_marketplace_rules_*.py check the pure marketplace rules
against: fixed moments (NOW, and a Wednesday's 18:00–19:00 window START–END), an
open offer for a device (:func:`an_offer`), and the MarketError a rule raises
(:func:`refusal`)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from bson import ObjectId

from registry.market.rules import MarketError

NOW = datetime(2024, 3, 12, 9, 7)
START = datetime(2024, 3, 13, 18, 0)  # a Wednesday
END = START + timedelta(hours=1)


def refusal(call, *args) -> MarketError:
    with pytest.raises(MarketError) as caught:
        call(*args)
    return caught.value


def an_offer(dev: dict, **overrides) -> dict:
    doc = {
        "_id": ObjectId(),
        "device_id": dev["device_id"],
        "start": START - timedelta(hours=2),
        "end": END + timedelta(hours=2),
        "direction": "down",
        "power_kw": 2.0,
        "price": 0.25,
        "currency": "EUR",
        "status": "open",
        "account_id": dev["account_id"],
        "aggregator_id": dev["aggregator_id"],
    }
    return {**doc, **overrides}
