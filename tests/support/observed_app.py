"""For the tests/test_observability_*.py modules and tests/test_deploy.py: an app
factory on the test's instance folder (the ``make_app`` fixture) and the samples
of a Prometheus text page (:func:`samples`, :func:`value`)."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from registry import create_app


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a Prometheus text page."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def make_app(instance_path: str) -> Any:
    def make_app(**config: Any) -> Any:
        return create_app({"INSTANCE_PATH": instance_path, "TESTING": True, **config})

    return make_app
