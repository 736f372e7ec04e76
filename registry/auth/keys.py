"""The built-in provider's signing keys: a key ring with one current key.

A ring is a JWKS of private RSA keys. Each key carries a `kid` (its RFC 7638
thumbprint unless given) and a `status`:

* ``current``: signs every new token; exactly one.
* ``next``: published but not yet signing (staged, so every host knows it
  before the first token signed with it arrives).
* ``retired``: signed earlier tokens; published until they have expired,
  then removed by `prune`.

The JWKS the provider publishes holds every key of the ring, public halves
only. On disk a ring is the same JWKS with the private members and two
timestamps (``created_at``, ``retired_at``); a single PEM key or a single JWK
is read as a ring whose one key is current.

    ring = KeyRing.parse(text)
    ring.current.key            # sign with this
    ring.rotate(now)            # the next (or a new) key signs; the old one retires
    ring.prune(now, older_than) # drop keys retired longer ago than a token lives
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from schemas.vocabulary import DATE_FORMAT

SIGNING_ALG = "RS256"
KEY_SIZE = 2048
STATUSES = ("current", "next", "retired")
_RING_MEMBERS = {"status", "created_at", "retired_at"}


class KeyRingError(ValueError):
    """The key ring text is unusable; the message says what to fix."""


@dataclass(frozen=True)
class RingKey:
    """One key of the ring and where it stands in its life."""

    key: RSAKey
    status: str
    created_at: datetime | None = None
    retired_at: datetime | None = None

    @property
    def kid(self) -> str:
        return str(self.key.kid)

    def as_jwk(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            k: v for k, v in self.key.as_dict(private=self.key.is_private).items() if k not in _RING_MEMBERS
        }
        data.update(status=self.status, use="sig", alg=SIGNING_ALG)
        for name in ("created_at", "retired_at"):
            if getattr(self, name) is not None:
                data[name] = _format_time(getattr(self, name))
        return data

    def public_jwk(self) -> dict[str, Any]:
        data = {k: v for k, v in self.key.as_dict(private=False).items() if k not in _RING_MEMBERS}
        data.update(use="sig", alg=SIGNING_ALG)
        return data


@dataclass(frozen=True)
class KeyRing:
    keys: tuple[RingKey, ...]

    @property
    def current(self) -> RingKey:
        return next(k for k in self.keys if k.status == "current")

    def public_jwks(self) -> dict[str, Any]:
        """What `/oauth/jwks.json` publishes: every key of the ring, public halves only."""
        return {"keys": [k.public_jwk() for k in self.keys]}

    def to_text(self) -> str:
        return json.dumps({"keys": [k.as_jwk() for k in self.keys]}, indent=2) + "\n"

    def rotate(self, now: datetime, new_key: RSAKey | None = None) -> KeyRing:
        """The staged `next` key (else `new_key`, else a fresh one) becomes current;
        the current one retires now and stays published."""
        staged = next((k for k in self.keys if k.status == "next"), None)
        promoted = staged.key if staged else (new_key or generate_key())
        kept = [
            replace(k, status="retired", retired_at=now) if k.status == "current" else k
            for k in self.keys
            if k is not staged
        ]
        created = staged.created_at if staged else now
        return KeyRing((RingKey(promoted, "current", created_at=created), *kept))

    def stage(self, now: datetime, new_key: RSAKey | None = None) -> KeyRing:
        """Publish a new key that does not sign yet (replacing an earlier staged one)."""
        kept = [k for k in self.keys if k.status != "next"]
        return KeyRing((*kept, RingKey(new_key or generate_key(), "next", created_at=now)))

    def prune(self, now: datetime, older_than: float) -> tuple[KeyRing, list[RingKey]]:
        """Remove keys retired more than `older_than` seconds ago; returns the ring and what
        went. A key retired at an unknown time goes only with `older_than` 0."""

        def prunable(k: RingKey) -> bool:
            if k.status != "retired":
                return False
            if k.retired_at is None:
                return older_than <= 0
            return (now - k.retired_at).total_seconds() >= older_than

        removed = [k for k in self.keys if prunable(k)]
        return KeyRing(tuple(k for k in self.keys if not prunable(k))), removed

    @classmethod
    def new(cls, now: datetime) -> KeyRing:
        return cls((RingKey(generate_key(), "current", created_at=now),))

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """A ring from a JWKS, a single JWK or a PEM private key; raises KeyRingError."""
        stripped = text.strip()
        if stripped.startswith("-----BEGIN"):
            return cls((RingKey(_import(stripped), "current"),))
        try:
            document = json.loads(stripped)
        except ValueError as error:
            raise KeyRingError(f"neither a PEM key nor JSON: {error}") from None
        entries = document.get("keys") if isinstance(document, dict) and "keys" in document else [document]
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise KeyRingError('a JWKS needs "keys": a list of JWK objects')
        return cls(_check_ring([_ring_key(entry) for entry in entries]))


def generate_key() -> RSAKey:
    key = RSAKey.generate_key(KEY_SIZE, parameters={"use": "sig", "alg": SIGNING_ALG})
    key.ensure_kid()
    return key


def public_jwks(key: RSAKey) -> dict[str, Any]:
    """The JWKS that publishes the public half of one key."""
    return {"keys": [RingKey(key, "current").public_jwk()]}


def _ring_key(entry: dict[str, Any]) -> RingKey:
    status = entry.get("status")
    if status is not None and status not in STATUSES:
        raise KeyRingError(f"key {entry.get('kid')!r}: status {status!r} is not one of {', '.join(STATUSES)}")
    if entry.get("alg") not in (None, SIGNING_ALG):
        raise KeyRingError(f"key {entry.get('kid')!r}: only {SIGNING_ALG} keys are supported")
    key = _import({k: v for k, v in entry.items() if k not in _RING_MEMBERS})
    return RingKey(key, status or "", _parse_time(entry.get("created_at")), _parse_time(entry.get("retired_at")))


def _import(value: Any) -> RSAKey:
    try:
        key = RSAKey.import_key(value)
    except (JoseError, ValueError, TypeError) as error:
        raise KeyRingError(f"not an RSA key: {error}") from None
    if key.raw_value.key_size < KEY_SIZE:
        raise KeyRingError(f"RSA keys need at least {KEY_SIZE} bits")
    key.ensure_kid()
    return key


def _check_ring(keys: list[RingKey]) -> tuple[RingKey, ...]:
    """Statuses made explicit: the first key without one is current when none is
    marked; further unmarked keys are retired. Exactly one current, with its
    private half; no kid twice."""
    marked = any(k.status == "current" for k in keys)
    ring: list[RingKey] = []
    for k in keys:
        if not k.status:
            k = replace(k, status="retired" if marked else "current")
            marked = True
        ring.append(k)
    current = [k for k in ring if k.status == "current"]
    if len(current) != 1:
        raise KeyRingError(f"a key ring needs exactly one current key, this one has {len(current)}")
    if not current[0].key.is_private:
        raise KeyRingError(f"the current key {current[0].kid!r} has no private half: it cannot sign")
    kids = [k.kid for k in ring]
    if len(set(kids)) != len(kids):
        raise KeyRingError("two keys of the ring have the same kid")
    return tuple(ring)


def _format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime(DATE_FORMAT)


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.strptime(str(value), DATE_FORMAT)
    except ValueError:
        raise KeyRingError(f"time {value!r} is not like 2026-01-31T12:00:00Z") from None
    return parsed.replace(tzinfo=UTC)
