"""Issue 12.4 / 12.5 across real processes, over real HTTP on loopback.

- four app processes started at the same moment on one fresh instance folder,
  and ``gunicorn -w 4`` on another, all boot and sign with one key;
- two hosts with separate instance folders (and so separate embedded stores)
  and shared configured secrets accept each other's tokens, share UI sessions
  through Redis, and a sign-out on one revokes the token on the other;
- `run.py keys rotate` / `prune` reach running hosts: the previous key's
  tokens stay valid until pruned, then are 401; with separate copies of the
  key file, staging the key first is what keeps the hosts agreeing;
- a deployment (MONGO_URI) without secrets stops with a message that says so.

Every process is stopped in a `finally`; Redis keys carry a prefix per test.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
import requests
from flask.json.tag import TaggedJSONSerializer

from registry.auth import KeyRing, hash_secret
from tests.processes import REDIS_URL, ROOT, Served, app_env, free_port, gunicorn, stop, wait_until_up

SECRETS = (
    "OAUTH_SIGNING_KEYS",
    "OAUTH_SIGNING_KEYS_FILE",
    "SECRET_KEY",
    "SECRET_KEY_FILE",
    "OAUTH_USERS_FILE",
    "OAUTH_CLIENTS_FILE",
    "DEMO_SECRETS",
    "AUTH_REDIS_PREFIX",
)
NO_SECRETS = {name: "" for name in SECRETS}  # whatever the developer's shell has: not configured here
BRIDGE_SECRET = "bridge-" + "s" * 24
DEMO_FILES = {"demo-credentials.json", "ui-secret-key", "oauth-signing-keys.json"}
COOKIE = "der_ui_session"
QUIET = {"JOBS_EMBEDDED_WORKER": "0", "LOG_FORMAT": "text"}


# --- helpers ----------------------------------------------------------------------------------------


def client_token(url: str, secret: str, client_id: str = "openadr-bridge") -> str:
    response = requests.post(
        f"{url}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret), timeout=10
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def api_status(url: str, token: str) -> tuple[int, str]:
    response = requests.get(f"{url}/devices", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    return response.status_code, response.text


def kid_of(token: str) -> str:
    head = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"])


def jwks_kids(url: str) -> list[str]:
    return [key["kid"] for key in requests.get(f"{url}/oauth/jwks.json", timeout=10).json()["keys"]]


def keys_cli(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "run.py", "keys", *args],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k not in SECRETS},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def generated(instance_path: str) -> set[str]:
    return DEMO_FILES & set(os.listdir(instance_path)) if os.path.isdir(instance_path) else set()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


@pytest.fixture
def prefix() -> Iterator[str]:
    """A Redis key prefix of this test alone (sessions, revocations, rate limits); removed after."""
    value = f"test-{uuid.uuid4().hex[:12]}"
    yield value
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{value}*"):
        client.delete(key)


@pytest.fixture
def shared_secrets(tmp_path: Path) -> dict[str, str]:
    """Configured secrets in mounted files, as every host of a deployment gets them."""
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "signing-keys.json").write_text(KeyRing.new(datetime.now(UTC)).to_text())
    (folder / "secret-key").write_text(uuid.uuid4().hex * 2)
    (folder / "clients.json").write_text(
        json.dumps(
            [
                {
                    "client_id": "openadr-bridge",
                    "client_secret_hash": hash_secret(BRIDGE_SECRET),
                    "grant_types": ["client_credentials"],
                    "role": "service",
                }
            ]
        )
    )
    (folder / "users.json").write_text(
        json.dumps([{"username": "ops", "password_hash": hash_secret("ops-password"), "role": "admin"}])
    )
    for path in folder.iterdir():
        path.chmod(0o600)
    return {
        "OAUTH_SIGNING_KEYS_FILE": str(folder / "signing-keys.json"),
        "SECRET_KEY_FILE": str(folder / "secret-key"),
        "OAUTH_CLIENTS_FILE": str(folder / "clients.json"),
        "OAUTH_USERS_FILE": str(folder / "users.json"),
    }


@contextlib.contextmanager
def two_hosts(
    tmp_path: Path, secrets_a: dict[str, str], secrets_b: dict[str, str], extra: dict[str, str] | None = None
) -> Iterator[tuple[Served, Served]]:
    """Host A, and host B behind the same public URL and issuer (as a load balancer
    would put them), each with its own instance folder and embedded store."""
    common = {**NO_SECRETS, **QUIET, **(extra or {})}
    with gunicorn(tmp_path, {**common, **secrets_a}, instance_path=str(tmp_path / "instance-a")) as a:
        shared_url = {"PUBLIC_URL": a.url, "OAUTH_ISSUER": a.url}
        with gunicorn(tmp_path, {**common, **secrets_b, **shared_url}, instance_path=str(tmp_path / "instance-b")) as b:
            yield a, b


# --- 12.5: the first start of several processes on one instance folder ------------------------------

CHILD = """
import sys, time
from werkzeug.serving import make_server
from registry import create_app
port, start = int(sys.argv[1]), float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))  # every process imported the app: now all at once
make_server("127.0.0.1", port, create_app(), threaded=True).serve_forever()
"""


def test_four_processes_starting_at_once_on_a_fresh_folder_share_one_key(tmp_path: Path) -> None:
    instance, ports = str(tmp_path / "fresh"), [free_port() for _ in range(4)]
    issuer = f"http://127.0.0.1:{ports[0]}"  # one deployment: one issuer
    start = time.time() + 12
    served: list[Served] = []
    try:
        for port in ports:
            env = app_env(instance, port, {**NO_SECRETS, **QUIET, "PUBLIC_URL": issuer, "OAUTH_ISSUER": issuer})
            log = tmp_path / f"app-{port}.log"
            with open(log, "w") as stderr:
                process = subprocess.Popen(
                    [sys.executable, "-c", CHILD, str(port), str(start)],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    start_new_session=True,
                )
            served.append(Served(f"http://127.0.0.1:{port}", process, log, instance, env))
        for one in served:
            wait_until_up(one, 90)
        assert time.time() > start
        for one in served:
            assert "Traceback" not in one.stderr_path.read_text(), one.stderr_path.read_text()
        secret = json.loads(Path(instance, "demo-credentials.json").read_text())["clients"]["openadr-bridge"]["secret"]
        tokens = [client_token(one.url, secret) for one in served]
        assert len({kid_of(token) for token in tokens}) == 1
        assert all(jwks_kids(one.url) == [kid_of(tokens[0])] for one in served)
        for token in tokens:  # a token from any process is accepted by all of them
            assert [api_status(one.url, token)[0] for one in served] == [200] * 4
        assert sorted(name for name in os.listdir(instance) if not name.startswith("prometheus")) == sorted(DEMO_FILES)
    finally:
        for one in served:
            stop(one.process)


def test_gunicorn_with_four_workers_boots_on_a_fresh_folder(tmp_path: Path) -> None:
    extra = {**NO_SECRETS, **QUIET, "RATE_LIMIT_PER_PROCESS_OK": "1"}
    with gunicorn(tmp_path, extra, workers=4, instance_path=str(tmp_path / "fresh"), timeout=90) as served:
        deadline = time.monotonic() + 60
        while served.stderr_path.read_text().count("Booting worker") < 4 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(5)  # a worker that fails to boot halts the master within moments
        log = served.stderr_path.read_text()
        assert served.process.poll() is None, log[-3000:]
        assert log.count("Booting worker") == 4 and "Traceback" not in log and "failed to boot" not in log, log[-3000:]
        secret = json.loads(Path(served.instance_path, "demo-credentials.json").read_text())["clients"][
            "openadr-bridge"
        ]["secret"]
        tokens = [client_token(served.url, secret) for _ in range(8)]
        assert len({kid_of(token) for token in tokens}) == 1
        for token in tokens:  # new connections each time: spread over the workers
            assert [api_status(served.url, token)[0] for _ in range(4)] == [200] * 4


# --- 12.4: hosts with separate instance folders and shared secrets -----------------------------------


def test_hosts_sharing_secrets_accept_each_others_tokens(
    tmp_path: Path, shared_secrets: dict[str, str], prefix: str
) -> None:
    with two_hosts(
        tmp_path,
        shared_secrets,
        shared_secrets,
        {"REDIS_URL": REDIS_URL, "AUTH_REDIS_PREFIX": f"{prefix}:", "RATE_LIMIT_KEY_PREFIX": prefix},
    ) as (a, b):
        from_a, from_b = client_token(a.url, BRIDGE_SECRET), client_token(b.url, BRIDGE_SECRET)
        assert kid_of(from_a) == kid_of(from_b)
        for token in (from_a, from_b):
            assert api_status(a.url, token)[0] == 200 and api_status(b.url, token)[0] == 200
        cli = subprocess.run(
            [sys.executable, "run.py", "token", "--role", "admin"],
            check=False,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={**a.env, "OAUTH_ISSUER": a.url},
        )
        assert cli.returncode == 0, cli.stderr
        assert api_status(a.url, cli.stdout.strip())[0] == 200 and api_status(b.url, cli.stdout.strip())[0] == 200
        assert jwks_kids(a.url) == jwks_kids(b.url)
        assert generated(a.instance_path) == set() and generated(b.instance_path) == set()  # nothing made up


def test_a_ui_session_spans_hosts_and_sign_out_on_one_revokes_on_the_other(
    tmp_path: Path, shared_secrets: dict[str, str], prefix: str
) -> None:
    with two_hosts(
        tmp_path,
        shared_secrets,
        shared_secrets,
        {"REDIS_URL": REDIS_URL, "AUTH_REDIS_PREFIX": f"{prefix}:", "RATE_LIMIT_KEY_PREFIX": prefix},
    ) as (a, b):
        browser = requests.Session()  # one cookie jar for both: the hosts are one site behind a balancer
        login = browser.get(f"{b.url}/ui/login", timeout=10)
        form = browser.post(f"{b.url}/ui/login/builtin", data={"csrf_token": csrf_of(login.text)}, timeout=10)
        assert form.url.startswith(f"{a.url}/oauth/authorize") and form.status_code == 200, form.text[:300]
        # the sign-in started on B (its OAuth state in the session) finishes on A
        done = browser.post(form.url, data={"username": "ops", "password": "ops-password"}, timeout=20)
        assert done.url == f"{a.url}/ui/devices" and done.status_code == 200, (done.url, done.text[:300])
        assert "ops" in done.text

        on_b = browser.get(f"{b.url}/ui/devices", allow_redirects=False, timeout=10)
        assert on_b.status_code == 200 and "ops" in on_b.text  # the same session, served by B
        sid = browser.cookies[COOKIE]
        stored = redis.Redis.from_url(REDIS_URL).get(f"{prefix}:ui-session:" + hashlib.sha256(sid.encode()).hexdigest())
        token = TaggedJSONSerializer().loads(stored.decode())["ui_user"]["token"]  # a copied token
        assert api_status(a.url, token)[0] == 200 and api_status(b.url, token)[0] == 200

        # the form A rendered (its CSRF token) is good on B: one SECRET_KEY, one session
        out = browser.post(f"{b.url}/ui/logout", data={"csrf_token": csrf_of(done.text)}, timeout=10)
        assert out.status_code == 200 and "signed out" in out.text, out.text[:300]
        replayed = requests.get(f"{a.url}/ui/devices", cookies={COOKIE: sid}, allow_redirects=False, timeout=10)
        assert replayed.status_code == 302 and replayed.headers["Location"].endswith("/ui/login")
        for host in (a, b):
            status, body = api_status(host.url, token)
            assert status == 401 and "revoked" in body


# --- rotation reaching running hosts -------------------------------------------------------------------


def test_rotation_of_a_shared_key_file_reaches_running_hosts(tmp_path: Path, shared_secrets: dict[str, str]) -> None:
    keys_file = shared_secrets["OAUTH_SIGNING_KEYS_FILE"]
    with two_hosts(tmp_path, shared_secrets, shared_secrets) as (a, b):
        old = client_token(a.url, BRIDGE_SECRET)
        assert api_status(a.url, old)[0] == 200 and api_status(b.url, old)[0] == 200  # now cached by both

        keys_cli("rotate", "--file", keys_file)
        ring = KeyRing.parse(Path(keys_file).read_text())
        new = client_token(b.url, BRIDGE_SECRET)
        if kid_of(new) != ring.current.kid:  # B looks at the file once a second
            time.sleep(1.2)
            new = client_token(b.url, BRIDGE_SECRET)
        assert kid_of(new) == ring.current.kid != kid_of(old)
        assert api_status(a.url, new)[0] == 200  # A had not looked yet: the unknown kid makes it look
        assert api_status(a.url, old)[0] == 200 and api_status(b.url, old)[0] == 200  # until it expires
        assert jwks_kids(a.url) == jwks_kids(b.url) == [ring.current.kid, kid_of(old)]

        assert f"removed {kid_of(old)}" in keys_cli("prune", "--older-than", "0", "--file", keys_file)
        time.sleep(1.2)
        for host in (a, b):
            status, body = api_status(host.url, old)
            assert status == 401 and "unknown key" in body
            assert api_status(host.url, new)[0] == 200
        assert jwks_kids(a.url) == [ring.current.kid]


def test_hosts_with_their_own_copies_agree_when_the_key_is_staged_first(
    tmp_path: Path, shared_secrets: dict[str, str]
) -> None:
    copies = {}
    for host in ("a", "b"):
        copies[host] = str(tmp_path / f"keys-{host}.json")
        shutil.copy(shared_secrets["OAUTH_SIGNING_KEYS_FILE"], copies[host])

    def distribute() -> None:  # what config management does: A's file to B's host
        shutil.copy(copies["a"], copies["b"] + ".new")
        os.replace(copies["b"] + ".new", copies["b"])

    with two_hosts(
        tmp_path,
        {**shared_secrets, "OAUTH_SIGNING_KEYS_FILE": copies["a"]},
        {**shared_secrets, "OAUTH_SIGNING_KEYS_FILE": copies["b"]},
    ) as (a, b):
        # without staging, A signs with a key B has not got yet
        keys_cli("rotate", "--file", copies["a"])
        time.sleep(1.2)
        unstaged = client_token(a.url, BRIDGE_SECRET)
        status, body = api_status(b.url, unstaged)
        assert status == 401 and "unknown key" in body
        distribute()
        assert api_status(b.url, unstaged)[0] == 200

        # staged: B publishes the next key before A signs with it
        keys_cli("rotate", "--stage", "--file", copies["a"])
        distribute()
        keys_cli("rotate", "--file", copies["a"])
        time.sleep(1.2)
        staged = client_token(a.url, BRIDGE_SECRET)
        assert kid_of(staged) != kid_of(unstaged)
        assert api_status(b.url, staged)[0] == 200 and api_status(b.url, unstaged)[0] == 200
        distribute()
        time.sleep(1.2)
        assert kid_of(client_token(b.url, BRIDGE_SECRET)) == kid_of(staged)  # B signs with it too now


# --- a deployment without secrets -----------------------------------------------------------------------


def test_a_deployment_without_secrets_stops_with_a_message(tmp_path: Path) -> None:
    extra = {**NO_SECRETS, **QUIET, "MONGO_URI": "mongodb://127.0.0.1:9/der_registry"}
    with gunicorn(tmp_path, extra, workers=2, wait=False) as served:
        try:
            served.process.wait(60)
        except subprocess.TimeoutExpired:
            pytest.fail("gunicorn kept running without secrets:\n" + served.stderr_path.read_text()[-2000:])
    log = served.stderr_path.read_text()
    assert served.process.returncode != 0
    assert "SecretsMissing" in log and "OAUTH_SIGNING_KEYS, SECRET_KEY, OAUTH_CLIENTS, OAUTH_USERS" in log, log[-2000:]
    assert "Worker failed to boot" in log
    assert generated(served.instance_path) == set()
