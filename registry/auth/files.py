"""Secret files on disk: read, replace atomically, create once.

Several processes start on one instance folder at the same moment (gunicorn
workers, `run.py token`, the VTN child), and several hosts may read one
mounted key file while `run.py keys rotate` rewrites it. So a file is never
written in place: its new content goes to a temporary file in the same
directory (mode 0600) and `os.replace` swaps it in, and a reader sees the old
file or the new one, never half of one. Generation happens under an exclusive
`flock` on the directory: the first process writes, the others wait and read
what it wrote ("first writer wins"), so every worker ends with the same
secret.

    text = create_once(path, make)     # make() -> str, called by one process only
    with directory_lock(folder):       # read-modify-write of a file in `folder`
        replace_file(path, new_text)
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
import tempfile
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)


def read_secret(path: str) -> str:
    """The text of a secret file; warns when others than its owner may read it."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o007:
        log.warning("secret file %s is readable by any user (mode %o); chmod 600 or 640 it", path, mode)
    with open(path, encoding="utf-8") as handle:
        return handle.read()


@contextlib.contextmanager
def directory_lock(directory: str) -> Iterator[None]:
    """An exclusive lock on `directory`, held by one process (of this host) at a time.

    The lock is on the directory itself, so no lock file is left behind and a
    crashed holder releases it with its last file descriptor."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def replace_file(path: str, text: str, mode: int | None = None) -> None:
    """Write `text` to `path` atomically: a temporary file beside it, then `os.replace`.

    The new file keeps the old one's mode (0600 for a new file) and, where the
    caller may, its owner and group."""
    directory = os.path.dirname(os.path.abspath(path))
    old = _stat_or_none(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode if mode is not None else stat.S_IMODE(old.st_mode) if old else 0o600)
        if old is not None:
            with contextlib.suppress(PermissionError):
                os.chown(tmp, old.st_uid, old.st_gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _sync_directory(directory)


def create_once(path: str, make: Callable[[], str]) -> str:
    """The content of `path`, made by `make()` and written if the file does not exist yet.

    Safe when several processes call it at once: one of them makes and writes
    the file, the others wait for the directory lock and then read that file."""
    if os.path.exists(path):
        return read_secret(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with directory_lock(directory):
        if os.path.exists(path):
            return read_secret(path)
        text = make()
        replace_file(path, text, mode=0o600)
        log.info("generated %s", path)
        return text


def _stat_or_none(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _sync_directory(directory: str) -> None:
    # the rename itself must survive a power cut, not only the file's bytes
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
