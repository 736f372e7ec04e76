"""Clearing as a pure function (issue 17, item 4; registry/market/clearing.py):
hand-computed merit orders, and properties over random bids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.market.clearing import Bid, clear, take

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def bid(bid_id, price, power, granularity=1.0, minute=0, devices=None) -> Bid:
    return Bid(bid_id, price, tuple(power), granularity, T0 + timedelta(minutes=minute), tuple(devices or [bid_id]))


# 10 kW wanted in two slots, at most 0.5 per kWh. By hand, down the merit order:
#   A 0.2  [6, 6]  g1   takes 6 and 6          → 4 and 4 still wanted
#   C 0.3  [5, 5]  g5   (earlier than B) 5 > 4, and no whole step of 5 fits: nothing, rejected
#   B 0.3  [6, 2]  g2   6 > 4: two steps of 2 = 4; 2 fits whole → 0 and 2 still wanted
#   D 0.6  [10,10]      above the maximum price: rejected
KNOWN = [
    bid("A", 0.2, [6, 6], 1.0, minute=5),
    bid("B", 0.3, [6, 2], 2.0, minute=2),
    bid("C", 0.3, [5, 5], 5.0, minute=1),
    bid("D", 0.6, [10, 10], 1.0, minute=0),
]


def test_pay_as_bid_known_answer():
    awards = {a.bid_id: a for a in clear([10, 10], 0.5, KNOWN)}
    assert [a.bid_id for a in clear([10, 10], 0.5, KNOWN)] == ["A", "C", "B", "D"]
    assert (awards["A"].accepted_kw, awards["A"].price) == ((6, 6), 0.2)
    assert (awards["B"].accepted_kw, awards["B"].price) == ((4, 2), 0.3)
    assert not awards["C"].accepted and awards["C"].price is None
    assert not awards["D"].accepted


def test_uniform_price_pays_every_winner_the_marginal_price():
    awards = {a.bid_id: a for a in clear([10, 10], 0.5, KNOWN, pricing="uniform")}
    assert (awards["A"].price, awards["B"].price) == (0.3, 0.3)
    assert awards["A"].accepted_kw == (6, 6) and awards["B"].accepted_kw == (4, 2)


def test_ties_go_to_the_earliest_bid_then_the_id():
    late, early = bid("late", 0.2, [5], minute=9), bid("early", 0.2, [5], minute=1)
    assert [a.bid_id for a in clear([5], 1.0, [late, early]) if a.accepted] == ["early"]
    same_b, same_a = bid("b", 0.2, [5]), bid("a", 0.2, [5])
    assert [a.bid_id for a in clear([5], 1.0, [same_b, same_a]) if a.accepted] == ["a"]


def test_a_device_is_never_sold_twice():
    first = bid("first", 0.1, [2], devices=["x"])
    second = bid("second", 0.15, [2], devices=["x", "y"])
    third = bid("third", 0.2, [2], devices=["y"])
    awards = {a.bid_id: a.accepted_kw for a in clear([6], 1.0, [first, second, third])}
    assert awards == {"first": (2,), "second": (0.0,), "third": (2,)}


def test_partial_acceptance_by_granularity():
    assert take(7.5, 10, 2.5) == 7.5  # fits whole
    assert take(7.5, 6, 2.5) == 5.0  # two steps of 2.5
    assert take(7.5, 2, 2.5) == 0.0  # not one step
    assert take(0.3, 0.2, 0.1) == pytest.approx(0.2)  # floating-point steps


def test_unknown_pricing_is_refused():
    with pytest.raises(ValueError):
        clear([1], 1.0, [], pricing="vickrey")


SLOTS = 4
power = st.floats(min_value=0, max_value=20, allow_nan=False)
random_bid = st.builds(
    lambda i, price, kws, g, minute, devices: bid(f"b{i}", price, kws, g, minute, devices),
    st.integers(0, 10_000),
    st.floats(min_value=0, max_value=1, allow_nan=False),
    st.lists(power, min_size=SLOTS, max_size=SLOTS),
    st.floats(min_value=0.001, max_value=5, allow_nan=False),
    st.integers(0, 60),
    st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=3, unique=True),
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    requested=st.lists(st.floats(min_value=0.001, max_value=30, allow_nan=False), min_size=SLOTS, max_size=SLOTS),
    max_price=st.floats(min_value=0, max_value=1, allow_nan=False),
    bids=st.lists(random_bid, max_size=12, unique_by=lambda b: b.bid_id),
    pricing=st.sampled_from(["pay_as_bid", "uniform"]),
)
def test_properties(requested, max_price, bids, pricing):
    awards = clear(requested, max_price, bids, pricing)
    by_id = {b.bid_id: b for b in bids}
    winners = [a for a in awards if a.accepted]
    for slot in range(SLOTS):  # never more than requested per slot
        assert sum(a.accepted_kw[slot] for a in winners) <= requested[slot] + 1e-6
    devices = [d for a in winners for d in by_id[a.bid_id].device_ids]
    assert len(devices) == len(set(devices))  # never a device twice
    for award in winners:
        offer = by_id[award.bid_id]
        assert offer.price <= max_price  # every winner's bid within the maximum price
        for accepted, offered in zip(award.accepted_kw, offer.power_kw):
            steps = accepted / offer.granularity_kw
            assert accepted <= offered + 1e-9
            assert accepted == offered or abs(steps - round(steps)) < 1e-6  # whole, or whole steps
        assert award.price == (max(by_id[w.bid_id].price for w in winners) if pricing == "uniform" else offer.price)
        assert award.price <= max_price
