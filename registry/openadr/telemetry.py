"""Telemetry batching: measurement documents posted in bulk.

What can be lost, and what cannot: a batch stays queued until the registry accepts it (re-sent with back-off while
the API is unavailable); a 4xx verdict on the data drops only the rejected
documents, found through Eve's per-item ``_issues`` or by bisecting the batch.

The buffer holds at most ``max_pending`` readings (``BufferFull`` beyond: the
VTN refuses the message instead of growing) and, given a ``Spool``, writes each
reading to disk before it is accepted and deletes it once the registry answered
for it; a new buffer on the same spool starts with what the last one left.
Without a spool, readings still waiting when the process ends are lost (logged
as such); readings the registry refuses (4xx) are dropped, with a log line.
``der_registry_openadr_buffered_readings`` gauges how many are waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Gauge

from registry.ops.metrics import PROCESS

from .api_client import ApiClient, ApiUnavailable
from .spool import Spool

logger = logging.getLogger("registry.openadr")

DATA_VERDICTS = frozenset({400, 413, 422})  # answers that judge the documents themselves
BUFFERED = Gauge(
    "der_registry_openadr_buffered_readings",
    "Readings the VTN accepted that the registry has not yet stored",
    registry=PROCESS,
)


class BufferFull(Exception):
    """The buffer holds ``max_pending`` readings; nothing of the new ones was taken."""


@dataclass
class MeasurementBuffer:
    """Batches measurement documents and posts them in bulk, losing none.

    A batch stays queued until the registry accepts it: while the API is down it
    is re-sent with back-off. A 4xx answer is a verdict on the data, so the
    rejected documents are logged and dropped and the rest re-sent; without
    per-item detail the batch is split until the bad document is isolated.
    """

    api: ApiClient
    batch_size: int = 500
    flush_interval: float = 0.5
    backoff_max: float = 2.0
    max_pending: int = 100_000
    spool: Spool | None = None
    sent: int = 0
    dropped: int = 0
    _pending: list[tuple[int | None, dict]] = field(default_factory=list, repr=False)  # (spool row, document)
    _wakeup: asyncio.Event | None = field(default=None, repr=False)
    _task: asyncio.Task | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.spool is not None:
            self._pending.extend(self.spool.load())
            if self._pending:
                logger.info("%d measurement(s) re-loaded from the spool %s", len(self._pending), self.spool.path)
        BUFFERED.set(len(self._pending))

    @property
    def pending(self) -> int:
        return len(self._pending)

    def room(self) -> int:
        return max(self.max_pending - len(self._pending), 0)

    def add(self, docs: list[dict]) -> None:
        """Take all of ``docs`` (on disk first, with a spool) or none (``BufferFull``)."""
        if len(docs) > self.room():
            raise BufferFull(f"{len(self._pending)} readings are waiting for the registry (at most {self.max_pending})")
        seqs = self.spool.add(docs) if self.spool is not None else [None] * len(docs)
        self._pending.extend(zip(seqs, docs))
        BUFFERED.set(len(self._pending))
        if self._wakeup is not None and len(self._pending) >= self.batch_size:
            self._wakeup.set()

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, drain_for: float = 5.0) -> None:
        """Stop the loop after trying (for ``drain_for`` s) to send what is queued."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        deadline = time.monotonic() + drain_for
        while self._pending and time.monotonic() < deadline:
            if not await self.flush_once():
                await asyncio.sleep(0.2)
        if self._pending:
            where = f"kept in the spool {self.spool.path}" if self.spool is not None else "lost (no spool)"
            logger.error(
                "bridge stopped with %d measurements not yet accepted by the registry: %s", len(self._pending), where
            )
        if self.spool is not None:
            self.spool.close()

    async def _run(self) -> None:
        delay = self.flush_interval
        while True:
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=delay)
            except TimeoutError:
                pass
            self._wakeup.clear()
            ok = True
            while self._pending and ok:
                ok = await self.flush_once()
            delay = self.flush_interval if ok else min(max(delay * 2, 0.1), self.backoff_max)

    async def flush_once(self) -> bool:
        """Send one batch; False when the registry is unavailable (batch kept)."""
        batch = self._pending[: self.batch_size]
        if not batch:
            return True
        try:
            accepted, rejected = await self._deliver([doc for _, doc in batch])
        except ApiUnavailable as err:
            logger.warning("measurements kept for re-send (%d queued): %s", len(self._pending), err)
            return False
        except Exception:  # a bug must not lose telemetry either
            logger.exception("measurements kept for re-send after an unexpected error")
            return False
        if self.spool is not None:  # the registry answered for all of them: stored or rejected
            self.spool.remove([seq for seq, _ in batch])
        del self._pending[: len(batch)]
        BUFFERED.set(len(self._pending))
        self.sent += accepted
        self.dropped += rejected
        return True

    async def _deliver(self, batch: list[dict]) -> tuple[int, int]:
        status, body = await self.api.post_measurements(batch)
        if status in (200, 201):
            return len(batch), 0
        if status not in DATA_VERDICTS:  # credentials, routing or rate limit, not the data: keep it
            raise ApiUnavailable(status, body, "POST", "/measurements")
        issues = per_item_issues(body, len(batch))
        if issues is not None and any(issues):
            for doc, issue in zip(batch, issues):
                if issue:
                    logger.error("registry rejected measurement %s (dropped): %s", doc, issue)
            good = [doc for doc, issue in zip(batch, issues) if not issue]
            accepted, rejected = await self._deliver(good) if good else (0, 0)
            return accepted, rejected + sum(1 for issue in issues if issue)
        if len(batch) == 1:
            logger.error("registry rejected measurement %s (dropped): %s %s", batch[0], status, body)
            return 0, 1
        half = len(batch) // 2  # no per-item verdict: bisect to find the culprit
        first, second = await self._deliver(batch[:half]), await self._deliver(batch[half:])
        return first[0] + second[0], first[1] + second[1]


def per_item_issues(body: Any, count: int) -> list[Any] | None:
    """Eve's bulk-insert verdict: one ``_status`` per document, in order."""
    if not isinstance(body, dict):
        return None
    items = body.get("_items") if count > 1 else [body]
    if not isinstance(items, list) or len(items) != count:
        return None
    return [None if item.get("_status") == "OK" else (item.get("_issues") or "rejected") for item in items]
