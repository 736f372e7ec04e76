"""Issue 12.4 / 12.5 across real processes, over real HTTP on loopback
(tests/support/auth_hosts.py). Every process is stopped in a `finally`; Redis
keys carry a prefix per test.

This part:
- two hosts with separate instance folders (and so separate embedded stores)
  and shared configured secrets accept each other's tokens, share UI sessions
  through Redis, and a sign-out on one revokes the token on the other;
- `run.py keys rotate` / `prune` reach running hosts: the previous key's
  tokens stay valid until pruned, then are 401; with separate copies of the
  key file, staging the key first is what keeps the hosts agreeing."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import redis
import requests
from flask.json.tag import TaggedJSONSerializer

from registry.auth import KeyRing
from tests.processes import REDIS_URL, ROOT
from tests.support.auth_hosts import (  # noqa: F401  (fixtures)
    BRIDGE_SECRET,
    COOKIE,
    api_status,
    client_token,
    generated,
    jwks_kids,
    keys_cli,
    kid_of,
    prefix,
    shared_secrets,
    two_hosts,
)
from tests.support.ui_sign_in import csrf_of

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
