"""Settings: UPPER_CASE values from the environment, and ``build_domain()``.

Eve mutates the DOMAIN it is given, so every app gets a fresh one.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import schemas
from schemas import vocabulary


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _env_switch(name: str, default: str) -> bool | str:
    """ "1" / "0" as True / False; any other value as given, checked where it is used."""
    raw = os.environ.get(name, default)
    return {"0": False, "1": True}.get(raw, raw)


MONGO_URI: str | None = os.environ.get("MONGO_URI") or None
MONGO_DBNAME: str = os.environ.get("MONGO_DBNAME", "der_registry")


def _write_concern(raw: str | None) -> dict[str, Any] | int | str | None:
    """ "majority", a number, or JSON ({"w": "majority", "j": true}); None: the URI's w, else majority."""
    if not raw:
        return None
    return json.loads(raw) if raw.lstrip().startswith("{") else raw


# durability (docs/deploy.md): resolved by registry/store/mongo_setup.py; Eve's own default is w:1
MONGO_WRITE_CONCERN: dict[str, Any] | int | str | None = _write_concern(os.environ.get("MONGO_WRITE_CONCERN"))
# the MongoDB client's readConcernLevel (not the embedded store's); a URI's own readConcernLevel wins
MONGO_READ_CONCERN: str = os.environ.get("MONGO_READ_CONCERN", "majority")
# with MONGO_URI, start-up waits for the server: this many pings, with back-off, in at most this long
MONGO_CONNECT_RETRIES: int = _env_int("MONGO_CONNECT_RETRIES", 10)
MONGO_CONNECT_WAIT_SECONDS: float = float(os.environ.get("MONGO_CONNECT_WAIT_SECONDS", "60"))
REDIS_URL: str | None = os.environ.get("REDIS_URL") or None
# absolute, so the server and `run.py token` share one signing key wherever they start
INSTANCE_PATH: str = os.path.abspath(
    os.environ.get("INSTANCE_PATH", os.path.join(os.path.dirname(os.path.abspath(__file__)), "instance"))
)

HOST: str = os.environ.get("HOST", "127.0.0.1")
PORT: int = _env_int("PORT", 5000)
VTN_PORT: int = _env_int("VTN_PORT", 8080)
PUBLIC_URL: str = os.environ.get("PUBLIC_URL", f"http://{HOST}:{PORT}")

OAUTH_ISSUER: str = os.environ.get("OAUTH_ISSUER", PUBLIC_URL)
OAUTH_AUDIENCE: str = os.environ.get("OAUTH_AUDIENCE", "der-registry")
OAUTH_TOKEN_TTL: int = min(_env_int("OAUTH_TOKEN_TTL", 3600), 3600)
# extra issuers, a JSON list: [{"issuer": …, "audience": …, "discovery_url": …,
#   "role_claim": "realm_access.roles", …}]
OAUTH_PROVIDERS: list[dict[str, Any]] = json.loads(os.environ.get("OAUTH_PROVIDERS", "[]"))
# the admin UI's OAuth client at those issuers, a JSON object keyed by issuer:
#   {"https://idp.example/realms/der": {"client_id": "der-ui", "client_secret": "…", "label": "Keycloak"}}
ADMIN_UI_CLIENTS: dict[str, dict[str, Any]] = json.loads(os.environ.get("ADMIN_UI_CLIENTS", "{}"))

# None: demo users and clients with secrets generated into the instance folder
OAUTH_USERS: list[dict[str, Any]] | None = (
    json.loads(os.environ["OAUTH_USERS"]) if "OAUTH_USERS" in os.environ else None
)
OAUTH_CLIENTS: list[dict[str, Any]] | None = (
    json.loads(os.environ["OAUTH_CLIENTS"]) if "OAUTH_CLIENTS" in os.environ else None
)
# secrets (docs/deploy.md, "Secrets and key rotation"): each in its variable or in the file
# its *_FILE names (a mounted secret); read by registry/auth/credentials.py. With MONGO_URI all
# are required; without it, what is missing is generated into INSTANCE_PATH (the demo)
OAUTH_USERS_FILE: str | None = os.environ.get("OAUTH_USERS_FILE") or None
OAUTH_CLIENTS_FILE: str | None = os.environ.get("OAUTH_CLIENTS_FILE") or None
SECRET_KEY: str | None = os.environ.get("SECRET_KEY") or None
SECRET_KEY_FILE: str | None = os.environ.get("SECRET_KEY_FILE") or None
# the built-in provider's key ring: a JWKS of private RSA keys (or one PEM key);
# the file is re-read when it changes (`python run.py keys rotate`)
OAUTH_SIGNING_KEYS: str | None = os.environ.get("OAUTH_SIGNING_KEYS") or None
OAUTH_SIGNING_KEYS_FILE: str | None = os.environ.get("OAUTH_SIGNING_KEYS_FILE") or None
# "1": generate missing secrets into INSTANCE_PATH even with MONGO_URI (one host trying MongoDB)
DEMO_SECRETS: bool = os.environ.get("DEMO_SECRETS", "0") == "1"
# Redis keys of UI sessions and revoked tokens (with REDIS_URL) start with this
AUTH_REDIS_PREFIX: str = os.environ.get("AUTH_REDIS_PREFIX", "der-registry:")

RATE_LIMIT: str = os.environ.get("RATE_LIMIT", "600 per minute")
RATE_LIMIT_SERVICE: str = os.environ.get("RATE_LIMIT_SERVICE", "20000 per minute")
# /oauth/token and the sign-in POST of /oauth/authorize, per client + user + address,
# and per address alone (a NAT'ed office shares one address; an attacker rotating users too)
RATE_LIMIT_SIGN_IN: str = os.environ.get("RATE_LIMIT_SIGN_IN", "30 per minute")
RATE_LIMIT_SIGN_IN_ADDRESS: str = os.environ.get("RATE_LIMIT_SIGN_IN_ADDRESS", "300 per minute")
# Redis keys of the limiter start with this (several deployments can share one Redis)
RATE_LIMIT_KEY_PREFIX: str = os.environ.get("RATE_LIMIT_KEY_PREFIX", "der-registry")
# without REDIS_URL every process counts alone: start anyway with several (WEB_CONCURRENCY > 1)
RATE_LIMIT_PER_PROCESS_OK: bool = os.environ.get("RATE_LIMIT_PER_PROCESS_OK", "0") == "1"
# processes serving this app on this host; deploy/gunicorn.conf.py exports its worker count
WEB_CONCURRENCY: int = _env_int("WEB_CONCURRENCY", 1)
# proxies in front of the app whose X-Forwarded-For / -Proto / -Host are believed (werkzeug ProxyFix)
TRUSTED_PROXIES: int = _env_int("TRUSTED_PROXIES", 0)
MAX_CONTENT_LENGTH: int = _env_int("MAX_CONTENT_LENGTH", 4 * 1024 * 1024)

# observability (docs/deploy.md): logs are one JSON object per line ("json") or plain "text"
LOG_FORMAT: str = os.environ.get("LOG_FORMAT", "json")
LOG_LEVEL: str = os.environ.get("LOG_LEVEL", "INFO")
# a bearer token for GET /metrics from other hosts (loopback needs none); unset: loopback only
METRICS_TOKEN: str | None = os.environ.get("METRICS_TOKEN") or None
# /ready also checks that this VTN accepts TCP connections (e.g. http://127.0.0.1:8080); unset: not checked
READY_VTN_URL: str | None = os.environ.get("READY_VTN_URL") or None
READY_TIMEOUT_SECONDS: float = float(os.environ.get("READY_TIMEOUT_SECONDS", "2"))
# sign-in on the built-in provider (docs/admin_ui.md): failed passwords before a
# lock, per username and per client address, and how long a lock lasts
LOGIN_LOCK_AFTER: int = _env_int("LOGIN_LOCK_AFTER", 5)
LOGIN_ADDRESS_LOCK_AFTER: int = _env_int("LOGIN_ADDRESS_LOCK_AFTER", 30)
LOGIN_LOCK_SECONDS: int = _env_int("LOGIN_LOCK_SECONDS", 900)
# the admin UI's server-side sessions (the access token inside lasts at most an hour)
ADMIN_UI_SESSION_SECONDS: int = _env_int("ADMIN_UI_SESSION_SECONDS", 8 * 3600)

# GET /series for a grid operator (docs/market.md): a period with fewer devices gives no value
DSO_MIN_HOUSEHOLDS: int = _env_int("DSO_MIN_HOUSEHOLDS", 5)

# the clearing of flexibility requests at gate closure (docs/market.md, "Orders"): "pay_as_bid"
# (each accepted bid is paid its own price) or "uniform" (every one the marginal, highest accepted price)
CLEARING_PRICING: str = os.environ.get("CLEARING_PRICING", "pay_as_bid")

# marketplace settlement (docs/marketplace.md): "high X of Y" or "recent X of Y"
MARKETPLACE_BASELINE: str = os.environ.get("MARKETPLACE_BASELINE", "high 4 of 5")
MARKETPLACE_PENALTY_FACTOR: float = float(os.environ.get("MARKETPLACE_PENALTY_FACTOR", "1.5"))
# telemetry arrives late: settle a completed contract this long after its end
MARKETPLACE_SETTLE_DELAY_MINUTES: int = _env_int("MARKETPLACE_SETTLE_DELAY_MINUTES", 30)
# writes to several documents (docs/marketplace.md, "Atomicity"): "auto" uses a MongoDB
# transaction on a replica set or mongos, "on" / "off" force it; never on the embedded store
MONGO_TRANSACTIONS: str = os.environ.get("MONGO_TRANSACTIONS", "auto")
# a request unfinished after this long is taken as dead (keep it above any worker timeout):
# the tick then repairs what it left half-done, and a retry may take its Idempotency-Key over
REQUEST_GRACE_SECONDS: int = _env_int("REQUEST_GRACE_SECONDS", 120)
# how long an Idempotency-Key and its answer are kept
IDEMPOTENCY_KEY_HOURS: int = _env_int("IDEMPOTENCY_KEY_HOURS", 24)

# forecasting / advisor jobs (docs/jobs.md). "auto": RQ when REDIS_URL is set and the
# store is shared (MONGO_URI), else the embedded worker thread; or "rq" / "embedded"
JOBS_BACKEND: str = os.environ.get("JOBS_BACKEND", "auto")
JOBS_QUEUE: str = os.environ.get("JOBS_QUEUE", "der-registry")
JOBS_MAX_ATTEMPTS: int = _env_int("JOBS_MAX_ATTEMPTS", 3)
# retry n waits JOBS_BACKOFF_SECONDS * 2**(n-1)
JOBS_BACKOFF_SECONDS: int = _env_int("JOBS_BACKOFF_SECONDS", 30)
# a job "running" this long was lost with its worker: it is queued again
JOBS_STALE_SECONDS: int = _env_int("JOBS_STALE_SECONDS", 900)
# how often workers advance the marketplace lifecycle and requeue lost jobs
JOBS_TICK_SECONDS: int = _env_int("JOBS_TICK_SECONDS", 60)
# the in-process worker thread and tick: "auto" runs them with the embedded backend and never
# with RQ (there only `python run.py worker` runs jobs and the tick); "0" off; "1" on (refused
# with RQ). Off when TESTING: tests drain jobs themselves
JOBS_EMBEDDED_WORKER: bool | str = _env_switch("JOBS_EMBEDDED_WORKER", "auto")
FORECAST_HISTORY_DAYS: int = _env_int("FORECAST_HISTORY_DAYS", 28)

# Eve globals (per-resource keys fall back to these)
DATE_FORMAT = vocabulary.DATE_FORMAT
PAGINATION_DEFAULT = 25
PAGINATION_LIMIT = 1000
QUERY_MAX_RESULTS = "max_results"
RESOURCE_METHODS = ["GET"]
ITEM_METHODS = ["GET"]
IF_MATCH = True
ENFORCE_IF_MATCH = True
BANDWIDTH_SAVER = True
# the audit trail: who changed what and when, readable by admins at /oplog
OPLOG = True
OPLOG_ENDPOINT = "oplog"
OPLOG_AUDIT = True
OPLOG_METHODS = ["DELETE", "POST", "PATCH", "PUT"]
OPLOG_CHANGE_METHODS = ["DELETE", "PATCH", "PUT"]
# operators that run code or can be made arbitrarily slow (regex bombs), and the
# modifiers that only mean something next to them
MONGO_QUERY_BLACKLIST = [
    "$where",
    "$regex",
    "$function",
    "$accumulator",
    "$expr",
    "$text",
    "$options",
    "$search",
    "$language",
    "$caseSensitive",
    "$diacriticSensitive",
]
# answered as JSON errors (Eve's list, plus 413 / 415 / 503 that the guards raise)
STANDARD_ERRORS = [400, 401, 403, 404, 405, 406, 409, 410, 412, 413, 415, 422, 428, 429, 503]
# stored NaN / ±Infinity are written as null instead of failing the response
RENDERERS = ["registry.api.json_io.SafeJSONRenderer", "eve.render.XMLRenderer"]
SWAGGER_INFO = {
    "title": "DER Registry & Flexibility Marketplace API",
    "version": "1.0",
    "description": "Distributed energy resources, their telemetry, and the flexibility market.",
    "license": {"name": "Apache-2.0"},
}


def build_domain() -> dict[str, Any]:
    """A fresh DOMAIN: one entry per schema module."""
    return {
        name: {**copy.deepcopy(module.RESOURCE), "schema": copy.deepcopy(module.SCHEMA)}
        for name, module in schemas.MODULES.items()
    }


def as_dict() -> dict[str, Any]:
    """Every UPPER_CASE setting of this module, plus a fresh DOMAIN."""
    values = {k: copy.deepcopy(v) for k, v in globals().items() if k.isupper()}
    values["DOMAIN"] = build_domain()
    return values
