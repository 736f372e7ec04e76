"""Issue 12.4 / 12.5 in one process (the secrets in tests/support/secrets_setup.py).
What needs several processes (hosts sharing secrets, gunicorn -w 4 on a fresh
folder, rotation seen by running servers) is in tests/test_multiprocess_auth*.py.

This part: the key ring and its rotation. Old keys stay published until pruned,
a staged key is published before it signs, the file format round-trips and bad
rings are refused with a reason; a running app follows its key file; ``python
run.py keys`` rotates, stages and prunes."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from joserfc import jwt
from werkzeug.security import check_password_hash

from registry import create_app
from registry.auth import KeyRing, KeyRingError, key_commands, mint_token
from registry.auth.keys import generate_key
from registry.auth.keystore import SigningKeys
from tests.support.secrets_setup import NOW, configured, ring_text, secrets_dir  # noqa: F401  (fixtures)

# --- the key ring ---------------------------------------------------------------------------------


def test_rotation_keeps_the_old_key_published_until_pruned() -> None:
    ring = KeyRing.new(NOW)
    first = ring.current.kid
    rotated = ring.rotate(NOW + timedelta(days=30))
    assert rotated.current.kid != first
    assert [(k.kid, k.status) for k in rotated.keys] == [(rotated.current.kid, "current"), (first, "retired")]
    assert [k["kid"] for k in rotated.public_jwks()["keys"]] == [rotated.current.kid, first]
    later = NOW + timedelta(days=30, minutes=30)
    assert rotated.prune(later, 3630)[1] == []  # its tokens may still be alive
    pruned, removed = rotated.prune(later + timedelta(hours=1), 3630)
    assert [k.kid for k in removed] == [first] and [k.kid for k in pruned.keys] == [rotated.current.kid]


def test_a_staged_key_is_published_first_and_signs_after_the_next_rotation() -> None:
    ring = KeyRing.new(NOW)
    staged = ring.stage(NOW)
    upcoming = next(k for k in staged.keys if k.status == "next")
    assert staged.current.kid == ring.current.kid and len(staged.public_jwks()["keys"]) == 2
    rotated = staged.rotate(NOW + timedelta(hours=1))
    assert rotated.current.kid == upcoming.kid and {k.status for k in rotated.keys} == {"current", "retired"}


def test_the_ring_survives_its_file_format() -> None:
    ring = KeyRing.new(NOW).rotate(NOW + timedelta(hours=2)).stage(NOW + timedelta(hours=3))
    again = KeyRing.parse(ring.to_text())
    assert [(k.kid, k.status, k.created_at, k.retired_at) for k in again.keys] == [
        (k.kid, k.status, k.created_at, k.retired_at) for k in ring.keys
    ]
    published = json.dumps(again.public_jwks())
    assert '"d"' not in published and "status" not in published and "retired_at" not in published


def test_a_pem_key_or_a_single_jwk_is_a_ring_of_one() -> None:
    key = generate_key()
    for text in (key.as_pem(private=True).decode(), json.dumps(key.as_dict(private=True))):
        ring = KeyRing.parse(text)
        assert ring.current.kid == key.thumbprint() and len(ring.keys) == 1


def test_unmarked_keys_after_the_first_are_retired_at_an_unknown_time() -> None:
    keys = [generate_key().as_dict(private=True) for _ in range(3)]
    ring = KeyRing.parse(json.dumps({"keys": keys}))
    assert [k.status for k in ring.keys] == ["current", "retired", "retired"]
    assert len(ring.prune(NOW, 3630)[0].keys) == 3  # unknown: kept ...
    assert len(ring.prune(NOW, 0)[0].keys) == 1  # ... unless every retired key goes


def _bad_rings() -> list[tuple[str, str]]:
    one, two = generate_key().as_dict(private=True), generate_key().as_dict(private=True)
    return [
        ("{", "neither a PEM key nor JSON"),
        ('{"keys": {}}', "list of JWK objects"),
        (json.dumps({"keys": [{**one, "status": "current"}, {**two, "status": "current"}]}), "exactly one current"),
        (json.dumps({"keys": [{**one, "status": "retired"}]}), "exactly one current"),
        (json.dumps({"keys": [{**one, "status": "old"}]}), "status 'old'"),
        (json.dumps({"keys": [one, one]}), "same kid"),
        (json.dumps({"keys": [{k: one[k] for k in ("kty", "n", "e")}]}), "no private half"),
        (json.dumps({"keys": [{**one, "alg": "ES256"}]}), "only RS256"),
        (json.dumps({"keys": [{**one, "retired_at": "yesterday"}]}), "is not like"),
        (json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}), "not an RSA key"),
    ]


@pytest.mark.parametrize("text, words", _bad_rings())
def test_a_bad_ring_is_refused_with_a_reason(text: str, words: str) -> None:
    with pytest.raises(KeyRingError, match=words):
        KeyRing.parse(text)


@pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")
def test_a_short_rsa_key_is_refused() -> None:
    from joserfc.jwk import RSAKey

    with pytest.raises(KeyRingError, match="2048 bits"):
        KeyRing.parse(json.dumps(RSAKey.generate_key(1024, private=True).as_dict(private=True)))


# --- a running app follows its key file ---------------------------------------------------------


def test_an_app_follows_rotation_and_pruning_of_its_key_file(tmp_path: Path, secrets_dir: Path) -> None:
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "TESTING": True, **configured(secrets_dir)})
    keys_file = str(secrets_dir / "signing-keys.json")
    client = app.test_client()

    def new_token() -> str:
        return client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=("openadr-bridge", "bridge-secret")
        ).json["access_token"]

    def status(token: str) -> int:
        return client.get("/devices", headers={"Authorization": f"Bearer {token}"}).status_code

    old = new_token()
    assert status(old) == 200  # validated and cached
    assert key_commands.run("rotate", {}, file=keys_file, out=io.StringIO()) == 0
    ring = KeyRing.parse(Path(keys_file).read_text())
    time.sleep(1.1)  # the file is looked at once a second; a token with an unknown kid makes it look at once
    fresh = new_token()
    assert jwt.decode(fresh, ring.current.key).header["kid"] == ring.current.kid != ring.keys[1].kid
    assert status(old) == 200 and status(fresh) == 200
    assert [k["kid"] for k in client.get("/oauth/jwks.json").json["keys"]] == [k.kid for k in ring.keys]
    assert stat.S_IMODE(os.stat(keys_file).st_mode) == 0o600  # the mode of the file it replaced

    assert key_commands.run("prune", {}, file=keys_file, older_than=0, out=io.StringIO()) == 0
    time.sleep(1.1)
    response = client.get("/devices", headers={"Authorization": f"Bearer {old}"})
    assert response.status_code == 401 and "unknown key" in response.json["_error"]["message"]  # cached or not
    assert status(fresh) == 200


def test_a_broken_key_file_keeps_the_keys_loaded_before(tmp_path: Path, ring_text: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(ring_text)
    clock = [0.0]
    keys = SigningKeys(KeyRing.parse(ring_text), str(path), clock=lambda: clock[0])
    path.write_text("{ half written")
    clock[0] = 5.0
    assert keys.current_key().kid == KeyRing.parse(ring_text).current.kid and keys.reload_count() == 0


def test_a_token_minted_for_a_config_uses_its_configured_keys(tmp_path: Path, secrets_dir: Path) -> None:
    config = {"INSTANCE_PATH": str(tmp_path), **configured(secrets_dir)}
    token = mint_token(config, "https://registry.example", "der-registry", "admin")
    ring = KeyRing.parse((secrets_dir / "signing-keys.json").read_text())
    assert jwt.decode(token, ring.current.key).header["kid"] == ring.current.kid
    assert os.listdir(tmp_path) == ["secrets"]  # no demo ring made up


ROOT = Path(__file__).resolve().parent.parent


# --- `python run.py keys` ------------------------------------------------------------------------


def run_keys(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OAUTH_SIGNING", "MONGO_URI"))}
    return subprocess.run(
        [sys.executable, "run.py", "keys", *args],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        env={**clean, **(env or {})},
    )


def test_keys_commands_on_a_key_file(tmp_path: Path) -> None:
    path = str(tmp_path / "keys" / "signing-keys.json")
    env = {"OAUTH_SIGNING_KEYS_FILE": path}
    created = run_keys("rotate", env=env)
    assert created.returncode == 0 and "created" in created.stdout, created.stderr
    first = KeyRing.parse(Path(path).read_text()).current.kid
    assert run_keys("rotate", "--stage", env=env).returncode == 0
    assert run_keys("rotate", env=env).returncode == 0
    listed = run_keys("list", env=env).stdout
    ring = KeyRing.parse(Path(path).read_text())
    assert [k.status for k in ring.keys] == ["current", "retired"] and ring.keys[1].kid == first
    assert f"{ring.current.kid}  current" in listed and f"{first}  retired" in listed
    assert "0 removed" in run_keys("prune", env=env).stdout  # its tokens may still be alive
    pruned = run_keys("prune", "--older-than", "0", env=env)
    assert f"removed {first}" in pruned.stdout and len(KeyRing.parse(Path(path).read_text()).keys) == 1


def test_keys_commands_work_on_the_demo_ring_and_refuse_inline_keys(tmp_path: Path, ring_text: str) -> None:
    rotated = run_keys("rotate", env={"INSTANCE_PATH": str(tmp_path)})
    assert rotated.returncode == 0 and (tmp_path / "oauth-signing-keys.json").exists()
    refused = run_keys("rotate", env={"OAUTH_SIGNING_KEYS": ring_text})
    assert refused.returncode == 2 and "--file PATH" in refused.stderr
    missing = run_keys("prune", "--file", str(tmp_path / "none.json"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_keys_hash_secret_gives_what_the_settings_take() -> None:
    hashed = run_keys("hash-secret", stdin="correct horse\n")
    assert hashed.returncode == 0 and check_password_hash(hashed.stdout.strip(), "correct horse")
    assert run_keys("hash-secret", stdin="\n").returncode == 2


def test_rotating_a_pem_key_keeps_it_in_a_jwks_ring(tmp_path: Path) -> None:
    key, path, out = generate_key(), tmp_path / "signing-key.pem", io.StringIO()
    path.write_bytes(key.as_pem(private=True))
    path.chmod(0o640)
    assert key_commands.run("rotate", {}, file=str(path), out=out) == 0
    ring = KeyRing.parse(path.read_text())
    assert [(k.kid, k.status) for k in ring.keys][1] == (key.kid, "retired") and "rewritten as a JWKS" in out.getvalue()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
