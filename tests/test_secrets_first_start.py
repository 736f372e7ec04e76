"""Issue 12.4 / 12.5 in one process (the secrets in tests/support/secrets_setup.py).
What needs several processes (hosts sharing secrets, gunicorn -w 4 on a fresh
folder, rotation seen by running servers) is in tests/test_multiprocess_auth*.py.

This part: atomic first-start files. Racing processes all get the first writer's
file, a failed write leaves neither the file nor a temporary one, and a legacy
single key keeps signing."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest

from registry.auth import files
from registry.auth.keys import generate_key
from registry.auth.keystore import signing_keys_for


def _create(path: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    results.put(files.create_once(path, lambda: uuid.uuid4().hex))


def test_racing_processes_all_get_the_first_writers_file(tmp_path: Path) -> None:
    path, processes = str(tmp_path / "secret"), 6
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=_create, args=(path, barrier, results)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    try:
        seen = {results.get(timeout=30) for _ in workers}
    finally:
        for worker in workers:
            worker.join(10)
    assert seen == {Path(path).read_text()} and os.listdir(tmp_path) == ["secret"]  # no temp files left
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_failed_write_leaves_no_file_and_no_temp_file(tmp_path: Path) -> None:
    def boom() -> str:
        raise RuntimeError("no entropy today")

    with pytest.raises(RuntimeError):
        files.create_once(str(tmp_path / "secret"), boom)
    assert os.listdir(tmp_path) == []
    assert files.create_once(str(tmp_path / "secret"), lambda: "made") == "made"


def test_a_legacy_single_key_keeps_signing(tmp_path: Path) -> None:
    legacy = generate_key()
    (tmp_path / "oauth-signing-key.json").write_text(json.dumps(legacy.as_dict(private=True)))
    keys = signing_keys_for({"INSTANCE_PATH": str(tmp_path)})
    assert keys.current_key().kid == legacy.kid
