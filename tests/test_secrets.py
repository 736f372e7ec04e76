"""Issue 12.4 / 12.5 in one process: where secrets come from, the key ring and its
rotation, atomic first-start files, and UI sessions / revocations in Redis.

What needs several processes (hosts sharing secrets, gunicorn -w 4 on a fresh
folder, rotation seen by running servers) is in tests/test_multiprocess_auth.py.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import stat
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mongomock
import pytest
import redis
from joserfc import jwt
from werkzeug.security import check_password_hash

from registry import create_app
from registry.admin_ui.session import RedisSessions, StoreSessions
from registry.auth import (
    KeyRing,
    KeyRingError,
    Principal,
    TokenRevocations,
    credentials,
    files,
    hash_secret,
    key_commands,
    mint_token,
)
from registry.auth.keys import generate_key
from registry.auth.keystore import SigningKeys, signing_keys_for
from tests.support.redis_server import redis_url

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = redis_url(0)
NOW = datetime(2030, 1, 2, 12, 0, tzinfo=UTC)
DEMO_FILES = {"demo-credentials.json", "ui-secret-key", "oauth-signing-keys.json"}


def bridge_client(secret: str = "bridge-secret") -> dict[str, Any]:
    return {
        "client_id": "openadr-bridge",
        "client_secret_hash": hash_secret(secret),
        "grant_types": ["client_credentials"],
        "role": "service",
    }


@pytest.fixture(scope="module")
def ring_text() -> str:
    return KeyRing.new(NOW).to_text()


@pytest.fixture
def secrets_dir(tmp_path: Path, ring_text: str) -> Path:
    """Mounted secrets, as a deployment has them."""
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "signing-keys.json").write_text(ring_text)
    (folder / "secret-key").write_text("k" * 64 + "\n")
    (folder / "clients.json").write_text(json.dumps([bridge_client()]))
    (folder / "users.json").write_text(
        json.dumps([{"username": "ops", "password_hash": hash_secret("pw"), "role": "admin"}])
    )
    for path in folder.iterdir():
        path.chmod(0o600)
    return folder


def configured(secrets_dir: Path) -> dict[str, Any]:
    return {
        "OAUTH_SIGNING_KEYS_FILE": str(secrets_dir / "signing-keys.json"),
        "SECRET_KEY_FILE": str(secrets_dir / "secret-key"),
        "OAUTH_CLIENTS_FILE": str(secrets_dir / "clients.json"),
        "OAUTH_USERS_FILE": str(secrets_dir / "users.json"),
    }


def deployment(tmp_path: Path, **config: Any) -> dict[str, Any]:
    return {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "PUBLIC_URL": "https://registry.example",
        "MONGO_URI": "mongodb://db.invalid:27017/der",
        **config,
    }


# --- a deployment refuses to start without its secrets -----------------------------------------


@pytest.mark.parametrize(
    "given",
    [
        [],
        ["OAUTH_SIGNING_KEYS_FILE"],
        ["SECRET_KEY_FILE", "OAUTH_CLIENTS_FILE"],
        ["OAUTH_SIGNING_KEYS_FILE", "SECRET_KEY_FILE", "OAUTH_CLIENTS_FILE"],
    ],
)
def test_a_deployment_without_its_secrets_refuses_to_start(tmp_path: Path, secrets_dir: Path, given: list[str]) -> None:
    config = deployment(tmp_path, **{k: v for k, v in configured(secrets_dir).items() if k in given})
    with pytest.raises(credentials.SecretsMissing) as refused:
        create_app(config)
    message = str(refused.value)
    for name in ("OAUTH_SIGNING_KEYS", "SECRET_KEY", "OAUTH_CLIENTS", "OAUTH_USERS"):
        assert (name in message) == (f"{name}_FILE" not in given), message
    assert "DEMO_SECRETS=1" in message and "docs/deploy.md" in message
    instance = Path(config["INSTANCE_PATH"])
    assert not instance.exists() or not DEMO_FILES & set(os.listdir(instance))  # nothing made up


def test_a_deployment_takes_every_secret_from_its_files(tmp_path: Path, secrets_dir: Path, ring_text: str) -> None:
    resolved = credentials.resolve(deployment(tmp_path, **configured(secrets_dir)))
    assert resolved["SECRET_KEY"] == "k" * 64
    assert [c["client_id"] for c in resolved["OAUTH_CLIENTS"]] == ["openadr-bridge", "admin-ui"]
    assert resolved["OAUTH_CLIENTS"][1]["redirect_uris"] == ["https://registry.example/ui/callback"]
    assert [u["username"] for u in resolved["OAUTH_USERS"]] == ["ops"] and not resolved.get("OAUTH_DEMO_USERS")
    keys = signing_keys_for(resolved)
    assert keys.current_key().kid == KeyRing.parse(ring_text).current.kid
    assert not os.path.exists(resolved["INSTANCE_PATH"])


def test_secrets_from_the_environment_itself(tmp_path: Path, ring_text: str) -> None:
    config = deployment(
        tmp_path, OAUTH_SIGNING_KEYS=ring_text, SECRET_KEY="s" * 40, OAUTH_CLIENTS=[bridge_client()], OAUTH_USERS=[]
    )
    resolved = credentials.resolve(config)
    assert resolved["SECRET_KEY"] == "s" * 40 and resolved["OAUTH_USERS"] == []
    assert signing_keys_for(resolved).current_key().kid == KeyRing.parse(ring_text).current.kid


@pytest.mark.parametrize("flag", ["DEMO_SECRETS", "TESTING"])
def test_demo_secrets_on_mongodb_only_when_asked(tmp_path: Path, flag: str) -> None:
    resolved = credentials.resolve(deployment(tmp_path, **{flag: True}))
    assert resolved["SECRET_KEY"] and resolved["OAUTH_DEMO_USERS"]
    assert {"demo-credentials.json", "ui-secret-key"} <= set(os.listdir(resolved["INSTANCE_PATH"]))


@pytest.mark.parametrize(
    "change, words",
    [
        ({"SECRET_KEY": "x" * 40}, "SECRET_KEY or SECRET_KEY_FILE, not both"),
        ({"OAUTH_CLIENTS": []}, "OAUTH_CLIENTS or OAUTH_CLIENTS_FILE, not both"),
        ({"OAUTH_USERS_FILE": "/nonexistent/users.json"}, "No such file"),
        ({"OAUTH_CLIENTS_FILE": "{bad}"}, "is not JSON"),
        ({"OAUTH_CLIENTS_FILE": "{}"}, "JSON list of objects"),
        ({"OAUTH_SIGNING_KEYS_FILE": "/nonexistent/keys.json"}, "No such file"),
        ({"OAUTH_SIGNING_KEYS_FILE": "not a key"}, "neither a PEM key nor JSON"),
        ({"OAUTH_SIGNING_KEYS": "{}"}, "OAUTH_SIGNING_KEYS or OAUTH_SIGNING_KEYS_FILE, not both"),
    ],
)
def test_bad_secret_settings_fail_at_start_with_a_message(
    tmp_path: Path, secrets_dir: Path, change: dict[str, Any], words: str
) -> None:
    config = deployment(tmp_path, **configured(secrets_dir))
    for name, value in change.items():
        if name.endswith("_FILE") and value.startswith(("{", "not")):
            (tmp_path / "bad").write_text(value)
            value = str(tmp_path / "bad")
        config[name] = value
    with pytest.raises(ValueError, match=words):
        create_app({**config, "MONGO_URI": None})


def test_an_embedded_app_on_configured_secrets_generates_nothing(tmp_path: Path, secrets_dir: Path) -> None:
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "TESTING": True, **configured(secrets_dir)})
    assert app.config["SECRET_KEY"] == "k" * 64
    assert not DEMO_FILES & set(os.listdir(app.config["INSTANCE_PATH"]))
    response = app.test_client().post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=("openadr-bridge", "bridge-secret")
    )
    assert response.status_code == 200, response.json
    kid = jwt.decode(response.json["access_token"], signing_keys_for(app.config).current_key()).header["kid"]
    assert kid == KeyRing.parse((secrets_dir / "signing-keys.json").read_text()).current.kid
    assert app.extensions["der_oauth"].listed_users == []  # a deployment's users are never named


def test_the_bridge_gets_no_made_up_secret_in_a_deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import settings

    monkeypatch.setattr(settings, "MONGO_URI", "mongodb://db.invalid/der")
    with pytest.raises(credentials.SecretsMissing, match="OPENADR_CLIENT_SECRET"):
        credentials.secret_of(str(tmp_path), "clients", credentials.BRIDGE_CLIENT_ID)
    assert os.listdir(tmp_path) == []


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


# --- first-start files: one writer, the same content for every process ---------------------------


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


# --- UI sessions and revocations in Redis ---------------------------------------------------------


def test_sessions_in_redis_expire_and_are_shared(redis_keys: Any) -> None:
    prefix, client = redis_keys
    one, other = RedisSessions(client, prefix), RedisSessions(redis.Redis.from_url(REDIS_URL), prefix)
    one.save("d1", '{"a": 1}', NOW, timedelta(seconds=600))
    assert other.load("d1") == '{"a": 1}' and 590 <= client.ttl(f"{prefix}ui-session:d1") <= 600
    other.delete("d1")
    assert one.load("d1") is None


def test_sessions_without_redis_are_no_one_signed_in_not_an_error() -> None:
    down = RedisSessions(redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2), "x:")
    down.save("d1", "{}", NOW, timedelta(seconds=60))
    assert down.load("d1") is None
    down.delete("d1")


def test_sessions_in_the_store_expire() -> None:
    sessions = StoreSessions(lambda: db)
    db = mongomock.MongoClient().db
    sessions.save("live", "{}", datetime.now(UTC) + timedelta(minutes=1), timedelta(minutes=1))
    sessions.save("dead", "{}", datetime.now(UTC) - timedelta(seconds=1), timedelta(minutes=1))
    assert sessions.load("live") == "{}" and sessions.load("dead") is None


def _principal(expires_in: float = 600) -> Principal:
    return Principal(
        subject="ops",
        role="admin",
        aggregator_id=None,
        account_id=None,
        issuer="https://registry.example",
        token_id=uuid.uuid4().hex,
        expires_at=time.time() + expires_in,
    )


def test_a_revocation_in_redis_reaches_a_process_with_another_store(redis_keys: Any) -> None:
    prefix, client = redis_keys
    here = TokenRevocations(lambda: here_db, client, prefix)
    there = TokenRevocations(lambda: there_db, redis.Redis.from_url(REDIS_URL), prefix)
    here_db, there_db = mongomock.MongoClient().db, mongomock.MongoClient().db
    principal, other = _principal(), _principal()
    here.revoke(principal, "token")
    assert there.is_revoked(principal, "token") and not there.is_revoked(other, "token")
    key = next(client.scan_iter(f"{prefix}revoked:*"))
    assert 600 <= client.ttl(key) <= 661  # until the token expires (and the validators' leeway)


def test_revocations_fall_back_to_the_store_while_redis_is_down() -> None:
    db = mongomock.MongoClient().db
    down = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    revocations = TokenRevocations(lambda: db, down, "x:")
    principal = _principal()
    revocations.revoke(principal, "token")
    assert revocations.is_revoked(principal, "token") and not revocations.is_revoked(_principal(), "token")


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


def test_half_configured_secrets_on_the_embedded_store_are_named_in_a_warning(
    tmp_path: Path, secrets_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "PUBLIC_URL": "http://127.0.0.1:5000",
        "SECRET_KEY_FILE": str(secrets_dir / "secret-key"),
    }
    with caplog.at_level("WARNING", logger="registry.auth.credentials"):
        resolved = credentials.resolve(config)
    assert resolved["SECRET_KEY"] == "k" * 64
    assert "for this host alone: OAUTH_SIGNING_KEYS, OAUTH_CLIENTS, OAUTH_USERS" in caplog.text
