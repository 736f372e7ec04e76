"""Property-based fuzzing of the whole API with schemathesis, for every role's token.

The OpenAPI document at /api-docs drives the generation: every operation gets
generated (and, for bodies and query parameters, deliberately invalid) input,
sent with an admin, service, aggregator and prosumer token, against a store
seeded with demo data. Every answer must be a non-5xx the document declares,
with a declared content type, a body matching its schema, and bad input must be
refused with a 4xx.

Bounded and reproducible: schemathesis's explicit boundary cases plus
FUZZ_EXAMPLES (10) generated ones per operation and role, derandomised, no
example database, no deadline, no shrinking (a failure prints its curl).
docs/hardening.md lists what this found.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from registry import create_app
from registry.demo import seeding as demo

EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES", "10"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]

DEMO = demo.build_demo(6)
PROSUMER = DEMO["prosumers"][1]
ROLES: dict[str, dict[str, str]] = {
    "admin": {},
    "service": {},
    "aggregator": {"aggregator_id": PROSUMER["aggregator_id"]},
    "prosumer": {"account_id": PROSUMER["account_id"], "aggregator_id": PROSUMER["aggregator_id"]},
    "dso": {"dso_id": DEMO["grid_areas"][0]["dso_id"]},
}


# schemathesis's lazy loader (from_fixture) fails on pytest 9.2 (it sets Node._nodeid), so
# the app is built at import and the document loaded eagerly; the data is seeded once
# per module by the autouse fixture below.
INSTANCE = tempfile.mkdtemp(prefix="fuzz-instance-")
atexit.register(shutil.rmtree, INSTANCE, True)
APP = create_app({"INSTANCE_PATH": INSTANCE, "TESTING": True, "RATE_LIMIT": "1000000 per minute"})
schema = schemathesis.openapi.from_wsgi("/api-docs", APP)


@pytest.fixture(scope="module", autouse=True)
def demo_data() -> None:
    """The demo's parties and market, two days of measurements."""
    demo.seed(APP, DEMO, measurement_days_count=2, progress=False)


@functools.cache
def bearer(role: str) -> dict[str, str]:
    from registry.auth import mint_token

    config = APP.config
    return {
        "Authorization": "Bearer "
        + mint_token(
            config["INSTANCE_PATH"],
            config["OAUTH_ISSUER"],
            config["OAUTH_AUDIENCE"],
            role,
            subject=f"fuzz-{role}",
            **ROLES[role],
        )
    }


@pytest.mark.parametrize("role", sorted(ROLES))
@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_for_every_role(case: Any, role: str) -> None:
    case.call_and_validate(headers=bearer(role), checks=CHECKS)


def item_operations() -> list[tuple[str, Any, Any]]:
    """(resource path, list GET, item GET by the resource's id) for every resource."""
    found = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method != "get" or "{" in operation.path:
            continue
        items = [
            o.ok()
            for o in schema.get_all_operations()
            if o.ok().method == "get" and o.ok().path.startswith(operation.path + "/{")
        ]
        # the id-field lookup, not the additional one (/aggregators/{Aggregator_Id})
        by_id = [o for o in items if o.path_parameters[0].name[0].islower()]
        found.append((operation.path, operation, by_id[0] if by_id else None))
    return found


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_document_a_role_sees_matches_the_document(role: str) -> None:
    """Random ids mostly miss: here every listed demo document, and its item, is checked."""
    checked = 0
    for path, list_get, item_get in item_operations():
        listing = list_get.Case(query={"max_results": 1000}).call_and_validate(headers=bearer(role), checks=CHECKS)
        if listing.status_code != 200 or item_get is None:
            continue
        id_field = APP.config["DOMAIN"][path.strip("/")].get("item_lookup_field", "_id")
        for doc in listing.json()["_items"][:20]:
            case = item_get.Case(path_parameters={item_get.path_parameters[0].name: doc[id_field]})
            assert case.call_and_validate(headers=bearer(role), checks=CHECKS).status_code == 200
            checked += 1
    assert checked > (5 if role == "dso" else 10)  # a grid operator reads directories and its areas
