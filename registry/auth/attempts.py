"""Failed sign-in attempts: an exponential back-off, then a lock-out.

Failures are counted per username and per client address. The username is
counted whether or not such a user exists, so neither the delay nor the
lock-out tells an attacker which names are real. While a wait is running no
password is checked at all: a locked account is no password oracle.

    throttle = LoginThrottle.from_config(app.config)
    throttle.retry_after(username, address) -> seconds (0: go ahead)
    throttle.failed(username, address); throttle.succeeded(username)

Counts live in Redis when ``REDIS_URL`` is set (so every worker process sees
them), in this process otherwise, and in this process while Redis is down.
Hand-written rather than Flask-Limiter / ``limits``: those count hits per
window, but the back-off needs the time of the last failure and a delay that
doubles with every failure; one small hash per key holds both.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)
MEMORY_KEYS = 100_000


@dataclass(frozen=True)
class Policy:
    """After `free` failures each one doubles the wait (1 s, 2 s, 4 s …, at
    most `lock_seconds`); `lock_after` failures lock for `lock_seconds` after
    the last one. Failures are forgotten twice that long after the last one,
    so a wrong password just after a lock ends locks again at once."""

    free: int
    lock_after: int
    lock_seconds: int

    @property
    def memory_seconds(self) -> int:
        return 2 * self.lock_seconds

    def wait(self, failures: int, last_failure: float, now: float) -> float:
        if failures >= self.lock_after:
            delay = float(self.lock_seconds)
        elif failures > self.free:
            delay = float(min(2 ** (failures - self.free - 1), self.lock_seconds))
        else:
            return 0.0
        return max(last_failure + delay - now, 0.0)


class AttemptStore(Protocol):
    def get(self, key: str, now: float) -> tuple[int, float]: ...
    def fail(self, key: str, now: float, ttl: int) -> None: ...
    def clear(self, key: str) -> None: ...


class MemoryAttempts:
    """Per-process counts: key -> (failures, last failure, forget at)."""

    def __init__(self, max_keys: int = MEMORY_KEYS) -> None:
        self._items: OrderedDict[str, tuple[int, float, float]] = OrderedDict()
        self._lock = threading.Lock()
        self.max_keys = max_keys

    def get(self, key: str, now: float) -> tuple[int, float]:
        with self._lock:
            failures, last, forget_at = self._items.get(key, (0, 0.0, 0.0))
        return (failures, last) if forget_at > now else (0, 0.0)

    def fail(self, key: str, now: float, ttl: int) -> None:
        failures, _ = self.get(key, now)
        with self._lock:
            self._items[key] = (failures + 1, now, now + ttl)
            self._items.move_to_end(key)
            while len(self._items) > self.max_keys:
                self._items.popitem(last=False)

    def clear(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


class RedisAttempts:
    """Shared counts: one Redis hash per key that expires `ttl` after the last failure."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def get(self, key: str, now: float) -> tuple[int, float]:
        found = self.client.hmget(self.prefix + key, "failures", "last")
        return (int(found[0] or 0), float(found[1] or 0.0))

    def fail(self, key: str, now: float, ttl: int) -> None:
        name = self.prefix + key
        pipe = self.client.pipeline(transaction=True)
        pipe.hincrby(name, "failures", 1).hset(name, "last", now).expire(name, ttl)
        pipe.execute()

    def clear(self, key: str) -> None:
        self.client.delete(self.prefix + key)


class FallbackAttempts:
    """Redis first; this process's memory while Redis cannot be reached (a
    Redis outage must neither stop every sign-in nor answer with a 500)."""

    def __init__(self, primary: AttemptStore, fallback: AttemptStore) -> None:
        self.primary, self.fallback = primary, fallback

    def _call(self, name: str, *args: Any) -> Any:
        from redis.exceptions import RedisError

        try:
            return getattr(self.primary, name)(*args)
        except RedisError as error:
            log.warning("sign-in attempts: Redis unavailable (%s); counting in this process", error)
            return getattr(self.fallback, name)(*args)

    def get(self, key: str, now: float) -> tuple[int, float]:
        return self._call("get", key, now)  # type: ignore[no-any-return]

    def fail(self, key: str, now: float, ttl: int) -> None:
        self._call("fail", key, now, ttl)

    def clear(self, key: str) -> None:
        self._call("clear", key)


class LoginThrottle:
    """Decides whether a password may be tried now, and records the outcome."""

    def __init__(
        self, store: AttemptStore, per_user: Policy, per_address: Policy, clock: Callable[[], float] = time.time
    ) -> None:
        self.store, self.per_user, self.per_address, self.clock = store, per_user, per_address, clock

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LoginThrottle:
        lock_seconds = int(config.get("LOGIN_LOCK_SECONDS") or 900)
        per_user = Policy(free=1, lock_after=int(config.get("LOGIN_LOCK_AFTER") or 5), lock_seconds=lock_seconds)
        per_address = Policy(
            free=10, lock_after=int(config.get("LOGIN_ADDRESS_LOCK_AFTER") or 30), lock_seconds=lock_seconds
        )
        store: AttemptStore = MemoryAttempts()
        if config.get("REDIS_URL"):
            import redis

            client = redis.Redis.from_url(config["REDIS_URL"], socket_connect_timeout=1, socket_timeout=1)
            prefix = config.get("LOGIN_ATTEMPTS_PREFIX") or "der-registry:login-attempts:"
            store = FallbackAttempts(RedisAttempts(client, prefix), store)
        return cls(store, per_user, per_address)

    def retry_after(self, username: str, address: str | None) -> float:
        now = self.clock()
        return max(
            self.per_user.wait(*self.store.get(_user_key(username), now), now),
            self.per_address.wait(*self.store.get(_address_key(address), now), now),
        )

    def failed(self, username: str, address: str | None) -> None:
        now = self.clock()
        self.store.fail(_user_key(username), now, self.per_user.memory_seconds)
        self.store.fail(_address_key(address), now, self.per_address.memory_seconds)

    def succeeded(self, username: str) -> None:
        # The address keeps its count: one valid account must not let an
        # attacker reset the budget for guessing everyone else's password.
        self.store.clear(_user_key(username))


def _user_key(username: str) -> str:
    # hashed: bounded length, and no typed-in names (or passwords typed into
    # the wrong field) end up readable in Redis
    return "user:" + hashlib.sha256(username.strip().casefold().encode("utf-8")).hexdigest()[:32]


def _address_key(address: str | None) -> str:
    return f"addr:{address or 'unknown'}"
