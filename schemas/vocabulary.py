"""The registry's words and fixed quantities, in one place that every layer imports.

Schemas, the registry's packages, settings.py and the benches read these names;
none of them writes the values again (tests/test_vocabulary.py scans for copies).
"""

from __future__ import annotations

from datetime import timedelta

# --- time ------------------------------------------------------------------------

# the API's dates (Eve's DATE_FORMAT): ISO 8601, UTC, whole seconds
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# the settlement period (ISP) of the market, the forecasts and the advice
SLOT = timedelta(minutes=15)
SLOT_SECONDS = int(SLOT.total_seconds())  # 900: a forecast's or price series' "resolution"
SLOT_MINUTES = SLOT_SECONDS // 60
SLOT_HOURS = SLOT / timedelta(hours=1)  # ¼ h: kW x SLOT_HOURS = kWh
SLOTS_PER_DAY = timedelta(days=1) // SLOT  # 96

# --- the Earth ---------------------------------------------------------------------

# The IUGG mean radius R1 = (2a + b) / 3 (Moritz, "Geodetic Reference System 1980"):
# the sphere that best fits the ellipsoid on average, so great-circle distances on it
# are off by at most ~0.5 % anywhere (the equatorial 6378.1 km overstates every
# distance away from the equator). Every distance this code computes uses it.
EARTH_RADIUS_M = 6_371_008.8
EARTH_RADIUS_KM = EARTH_RADIUS_M / 1000
# Not a choice but MongoDB's own constant (kRadiusOfEarthInMeters, equatorial): the
# server turns $near / $nearSphere metres into radians with it. The embedded store
# emulates those operators with it too, so both stores (and a count and its find)
# answer a query alike; registry/store/geo.py is its only reader.
MONGODB_EARTH_RADIUS_M = 6_378_100.0

# --- devices -------------------------------------------------------------------------

DEVICE_CLASSES = ("hvacDevice", "lightingLoad", "dhwDevice", "otherLoad")
DEVICE_TYPES = ("Demand", "Generation", "Storage")
# the yes / no switches of a device
AVAILABILITY_FIELDS = ("availability", "marketplace_availability", "dr_availability")

# --- the marketplace (docs/marketplace.md) ------------------------------------------

OFFER_STATUSES = ("open", "contracted", "withdrawn", "expired")
CONTRACT_STATUSES = ("proposed", "accepted", "active", "completed", "settled", "rejected", "cancelled")
# live contracts: they hold their devices' slots (the reservations) and reach the VENs
LIVE_CONTRACT_STATES = ("accepted", "active")
# called off before delivery: their slots are freed, their offers reopen, their events cancelled
CALLED_OFF_CONTRACT_STATES = ("cancelled", "rejected")

# --- the grid operators' market (docs/market.md) -------------------------------------

# a flexibility request: open for bids until its gate closure, then cleared (the tick claims
# it as clearing while it runs the merit order); or cancelled by its DSO
FLEX_REQUEST_STATUSES = ("open", "clearing", "cleared", "cancelled")
# a bid: submitted (and revised) until gate closure, or withdrawn; accepted / rejected by the clearing
BID_STATUSES = ("submitted", "withdrawn", "accepted", "rejected")
# an order (USEF FlexOrder): an accepted bid holding its devices' slots; active in its
# window, completed (slots released) at its end
ORDER_STATUSES = ("accepted", "active", "completed")
# live orders: they hold their devices' slots, as live contracts do
LIVE_ORDER_STATES = LIVE_CONTRACT_STATES
# the clearing's prices (docs/market.md): each winner its own, or every winner the marginal one
PRICINGS = ("pay_as_bid", "uniform")
# the longest window a request may name: one day of 15-minute slots
MAX_REQUEST_SLOTS = 96

# --- jobs ------------------------------------------------------------------------------

JOB_STATUSES = ("queued", "running", "done", "failed")

# --- advice: the words of the 1..5 slot tags (ReDREAM Prosumer Advisor style) ----------

TAG_WORDS = {
    1: "consumption strongly recommended",
    2: "consumption recommended",
    3: "warning",
    4: "consumption not recommended",
    5: "consumption forbidden",
}
