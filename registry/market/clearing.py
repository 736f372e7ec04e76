"""Clearing a flexibility request at gate closure, as a pure function (docs/market.md,
"Clearing").

Merit order: bids by price, then the earliest ``submitted_at``, then id (so two runs
over the same bids agree). Down the order, each bid takes what is still wanted in
each slot: all it offers there if that fits, else the largest multiple of its
granularity that fits (possibly none). A bid none of whose devices is free (one of
them already in an accepted bid) or priced above the maximum is rejected, as is a
bid accepted in no slot. Winners are paid their own price (pay-as-bid) or the
highest accepted price (uniform, the marginal price).

Nothing here reads a store or a clock: the tick runs it at gate closure and turns
the awards into orders with reservations (:mod:`registry.market.orders`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from schemas.vocabulary import PRICINGS

# kW below which a remainder is taken as nothing (floating-point dust)
EPSILON_KW = 1e-9


@dataclass(frozen=True)
class Bid:
    bid_id: str
    price: float
    power_kw: tuple[float, ...]
    granularity_kw: float
    submitted_at: datetime
    device_ids: tuple[str, ...]


@dataclass(frozen=True)
class Award:
    """A bid's outcome: the power accepted per slot (all zero: rejected) and the price paid per kWh."""

    bid_id: str
    accepted_kw: tuple[float, ...]
    price: float | None

    @property
    def accepted(self) -> bool:
        return any(kw > 0 for kw in self.accepted_kw)


def merit_order(bids: Sequence[Bid]) -> list[Bid]:
    return sorted(bids, key=lambda b: (b.price, b.submitted_at, b.bid_id))


def take(offered: float, wanted: float, granularity: float) -> float:
    """What a bid offering ``offered`` kW gives to ``wanted`` kW: all of it if it fits,
    else whole steps of its granularity."""
    if offered <= wanted + EPSILON_KW:
        return offered
    if granularity <= 0:  # no step given: any part
        return wanted
    steps = math.floor((wanted + EPSILON_KW) / granularity)
    return round(steps * granularity, 9)


def clear(
    requested: Sequence[float], max_price: float, bids: Sequence[Bid], pricing: str = "pay_as_bid"
) -> list[Award]:
    """One award per bid, in merit order."""
    if pricing not in PRICINGS:
        raise ValueError(f"pricing must be one of {PRICINGS}")
    wanted = list(requested)
    used: set[str] = set()
    results: list[tuple[Bid, tuple[float, ...]]] = []
    for bid in merit_order(bids):
        accepted = tuple(0.0 for _ in wanted)
        if bid.price <= max_price and not used & set(bid.device_ids) and len(bid.power_kw) == len(wanted):
            accepted = tuple(take(p, w, bid.granularity_kw) for p, w in zip(bid.power_kw, wanted))
        if any(kw > 0 for kw in accepted):
            used |= set(bid.device_ids)
            wanted = [max(0.0, w - a) for w, a in zip(wanted, accepted)]
        results.append((bid, accepted))
    won = [bid.price for bid, accepted in results if any(kw > 0 for kw in accepted)]
    marginal = max(won) if won else None
    return [
        Award(bid.bid_id, accepted, (marginal if pricing == "uniform" else bid.price) if any(accepted) else None)
        for bid, accepted in results
    ]
