"""What tests/test_jobs_triggers.py, tests/test_jobs_results.py and
tests/test_jobs_worker.py start from: a prosumer's device stored without
triggering any job (the ``owned`` fixture), the forecast job kinds, and the jobs
in the store."""

from __future__ import annotations

import pytest

from tests.factories import device

FORECASTS = {"consumption_forecast", "flexibility_forecast"}


@pytest.fixture
def owned(insert):
    """A prosumer and one device of it, stored without triggering any job."""

    def owned(**overrides):
        dev = device(**overrides)
        insert(
            "prosumers",
            {
                "account_id": dev["account_id"],
                "aggregator_id": dev["aggregator_id"],
                "display_name": "home",
                "contracted_max_power_kw": 6.0,
            },
        )
        insert("devices", dev)
        return dev

    return owned


def all_jobs(db, **spec):
    return list(db["jobs"].find(spec))
