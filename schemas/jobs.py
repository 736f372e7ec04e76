"""jobs: every forecasting / advisor job (registry/jobs), read-only through the API.

status: queued -> running -> done | failed; a failed attempt with attempts
left goes back to queued with a back-off (not_before).
"""

from __future__ import annotations

from typing import Any

from schemas.common import AGGREGATOR_ID, UUID_FIELD
from schemas.vocabulary import JOB_STATUSES

JOB_KINDS = ["consumption_forecast", "flexibility_forecast", "prosumer_advice", "aggregator_advice"]

SCHEMA: dict[str, Any] = {
    "kind": {"type": "string", "allowed": JOB_KINDS, "required": True},
    # a device_id (forecasts), an account_id (prosumer advice) or an aggregator_id
    "subject": {"type": "string", "required": True, "maxlength": 256},
    # what the job was asked to compute from; the same kind + subject + key is the same job
    "input_key": {"type": "string", "maxlength": 512},
    "input_keys": {"type": "list", "schema": {"type": "string", "maxlength": 512}},
    # kind|subject|params digest: at most one queued job per key (partial unique index)
    "dedup_key": {"type": "string", "maxlength": 600},
    # triggers absorbed by this job while it waited (debouncing)
    "triggers": {"type": "integer", "min": 0},
    "params": {"type": "dict", "allow_unknown": True},
    "status": {"type": "string", "allowed": list(JOB_STATUSES)},
    "attempts": {"type": "integer", "min": 0},
    "max_attempts": {"type": "integer", "min": 1},
    "not_before": {"type": "datetime"},
    "queued_at": {"type": "datetime"},
    "started_at": {"type": "datetime", "nullable": True},
    "finished_at": {"type": "datetime", "nullable": True},
    "error": {"type": "string", "nullable": True},
    "result_url": {"type": "string", "nullable": True},
    "backend": {"type": "string", "allowed": ["embedded", "rq"]},
    "account_id": UUID_FIELD,
    "aggregator_id": AGGREGATOR_ID,
}

RESOURCE: dict[str, Any] = {
    "item_title": "job",
    # written by the job layer only (registry/jobs/records.py)
    "resource_methods": ["GET"],
    "item_methods": ["GET", "DELETE"],
    "default_sort": [("queued_at", -1)],
    "mongo_indexes": {
        "due": [("status", 1), ("not_before", 1)],
        "identity": [("kind", 1), ("subject", 1), ("input_keys", 1)],
        "owner": [("aggregator_id", 1), ("account_id", 1)],
    },
}
