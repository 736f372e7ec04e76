"""Latency and outcome of every request a load bench sends, from every client thread."""

from __future__ import annotations

import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable

import requests


class Recorder:
    """Latency and outcome of every request, from every client thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []

    def call(
        self, op: str, expected: tuple[int, ...], send: Callable[[], requests.Response]
    ) -> requests.Response | None:
        started = time.perf_counter()
        try:
            response = send()
        except requests.RequestException as exc:
            with self.lock:
                self.errors.append(f"{op}: {type(exc).__name__}: {exc}")
            return None
        elapsed = (time.perf_counter() - started) * 1000
        with self.lock:
            self.samples[op].append(elapsed)
            if response.status_code not in expected:
                self.errors.append(f"{op}: {response.status_code} {response.text[:200]}")
        return response if response.status_code in expected else None


def percentile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1] if len(samples) > 1 else samples[0]
