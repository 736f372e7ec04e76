"""The HTTP surface around Eve: request guards, rate limits, query parsing, the JSON
codec, the validator, the OpenAPI document, idempotent and once-only inserts, and
the custom endpoints (advice requests)."""
