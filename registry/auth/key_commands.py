"""`python run.py keys …`: look after the signing key ring, and hash secrets.

    keys list                     every key: kid, status, when made, when retired
    keys rotate [--stage]         the staged (or a new) key signs; the old one stays published
    keys prune [--older-than S]   drop keys retired longer ago than a token lives
    keys hash-secret              a password or client secret (stdin) -> the hash settings take

They work on ``--file``, else ``OAUTH_SIGNING_KEYS_FILE``, else the demo ring
in the instance folder; `rotate` creates a missing file. Running processes
re-read a changed file within a second (docs/deploy.md, "Secrets and key
rotation").
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from schemas.vocabulary import DATE_FORMAT

from .accounts import hash_secret
from .issuing import MAX_TOKEN_TTL
from .keys import KeyRing, KeyRingError, RingKey
from .keystore import edit_ring_file, key_file_for, load_ring
from .tokens import LEEWAY_SECONDS

#: a retired key may go once every token it signed has expired
PRUNE_AFTER_SECONDS = MAX_TOKEN_TTL + LEEWAY_SECONDS


def run(
    command: str,
    config: Mapping[str, Any],
    *,
    file: str | None = None,
    stage: bool = False,
    older_than: float = PRUNE_AFTER_SECONDS,
    out: TextIO = sys.stdout,
) -> int:
    """One `keys` command; returns the exit status (2 with a message on stderr when refused)."""
    if command == "hash-secret":
        return hash_secret_from_stdin(out)
    try:
        path = file or key_file_for(config)
        commands: dict[str, Callable[[], int]] = {
            "list": lambda: list_keys(path, out),
            "rotate": lambda: rotate(path, stage, out),
            "prune": lambda: prune(path, older_than, out),
        }
        return commands[command]()
    except (KeyRingError, OSError) as error:
        print(f"run.py keys {command}: {error}", file=sys.stderr)
        return 2


def list_keys(path: str, out: TextIO) -> int:
    ring = load_ring(path)
    print(f"{path}:", file=out)
    for key in ring.keys:
        print("  " + describe(key), file=out)
    return 0


def rotate(path: str, stage: bool, out: TextIO) -> int:
    now = datetime.now(UTC)
    before: list[KeyRing | None] = []
    if _is_pem(path):
        print(f"{path} held one PEM key: it is rewritten as a JWKS key ring (the key is kept)", file=out)

    def change(ring: KeyRing | None) -> KeyRing:
        before.append(ring)
        if ring is None:
            return KeyRing.new(now)
        return ring.stage(now) if stage else ring.rotate(now)

    ring = edit_ring_file(path, change)
    if before[0] is None:
        print(f"created {path} with one key; current: {ring.current.kid}", file=out)
    elif stage:
        staged = next(k for k in ring.keys if k.status == "next")
        print(f"staged {staged.kid}: published, signing from the next `keys rotate`", file=out)
    else:
        print(
            f"current: {ring.current.kid}; retired: {before[0].current.kid} (published until "
            f"`keys prune` after its tokens have expired, {PRUNE_AFTER_SECONDS} s)",
            file=out,
        )
    return 0


def prune(path: str, older_than: float, out: TextIO) -> int:
    now = datetime.now(UTC)
    removed: list[RingKey] = []

    def change(ring: KeyRing | None) -> KeyRing:
        if ring is None:
            raise KeyRingError(f"{path} does not exist")
        kept, gone = ring.prune(now, older_than)
        removed.extend(gone)
        return kept

    ring = edit_ring_file(path, change)
    for key in removed:
        print(f"removed {key.kid}", file=out)
    print(f"{len(removed)} removed, {len(ring.keys)} kept", file=out)
    return 0


def _is_pem(path: str) -> bool:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read(64).lstrip().startswith("-----BEGIN")
    except OSError:
        return False


def describe(key: RingKey) -> str:
    def when(value: datetime | None) -> str:
        return value.strftime(DATE_FORMAT) if value else "-"

    return f"{key.kid}  {key.status:<8} created {when(key.created_at)}  retired {when(key.retired_at)}"


def hash_secret_from_stdin(out: TextIO) -> int:
    """The hash of one secret: typed without echo on a terminal, else the first stdin line."""
    secret = getpass.getpass("secret: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
    if not secret:
        print("run.py keys hash-secret: no secret given", file=sys.stderr)
        return 2
    print(hash_secret(secret), file=out)
    return 0


def add_arguments(sub: Any) -> None:
    """`run.py keys`: its arguments on the command line's subparsers."""
    keys = sub.add_parser("keys", help="the signing key ring (list, rotate, prune) and secret hashes")
    keys.add_argument("action", choices=["list", "rotate", "prune", "hash-secret"])
    keys.add_argument(
        "--file",
        help="the key ring (default: OAUTH_SIGNING_KEYS_FILE, else the demo's in INSTANCE_PATH); rotate creates it",
    )
    keys.add_argument(
        "--stage",
        action="store_true",
        help="rotate: publish a new key that signs from the next rotate (hosts with their own copies)",
    )
    keys.add_argument(
        "--older-than",
        type=float,
        help="prune: retired at least this many seconds ago (default: a token's lifetime; 0: every retired key)",
    )
