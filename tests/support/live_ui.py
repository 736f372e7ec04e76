"""The admin UI served for real on a loopback port (werkzeug, threaded), seeded with
a smaller demo data set, and API access to it as any demo user (:class:`Live`):
the module-scoped ``live`` fixture of tests/test_admin_ui_*.py and
tests/test_security_ui_*.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from registry import create_app
from registry.auth import credentials, mint_token
from registry.demo import fleet
from registry.demo import seeding as demo


@dataclass
class Live:
    """The served app, and API access as any demo user."""

    url: str
    app: Any
    instance_path: str

    def password(self, username: str) -> str:
        return credentials.secret_of(self.instance_path, "users", username)

    def api(self, username: str, path: str, **params: Any) -> dict[str, Any]:
        claims = fleet.identities()[username]
        token = mint_token(
            self.instance_path,
            self.app.config["OAUTH_ISSUER"],
            self.app.config["OAUTH_AUDIENCE"],
            claims["role"],
            aggregator_id=claims.get("aggregator_id"),
            account_id=claims.get("account_id"),
        )
        query = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
        response = requests.get(
            f"{self.url}/{path}", params=query, timeout=10, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def live(instance_path: str) -> Iterator[Live]:
    """The real app on a loopback port, seeded with (a smaller) demo data set.

    The server binds first so PUBLIC_URL and the issuer can name the real
    port before the app (and its OAuth client registration) is built."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, lambda environ, start: [], threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app = create_app(
        {"INSTANCE_PATH": instance_path, "PUBLIC_URL": url, "OAUTH_ISSUER": url, "RATE_LIMIT": "100000 per minute"}
    )
    demo.seed(app, demo.build_demo(24), measurement_days_count=2, progress=False)
    server.app = app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Live(url, app, instance_path)
    server.shutdown()
