"""The DER Registry: ``create_app()`` builds a configured Eve app."""
from __future__ import annotations

import os
from typing import Any

from eve import Eve
from flask import jsonify

import hooks
import settings
from registry import docs, guards, store
from registry.store import RegistryMongo
from registry.validator import RegistryValidator


def create_app(overrides: dict[str, Any] | None = None) -> Eve:
    """An Eve app on the embedded store (default) or MONGO_URI's MongoDB."""
    config = settings.as_dict()
    config.update(overrides or {})
    instance_path = os.path.abspath(config["INSTANCE_PATH"])
    os.makedirs(instance_path, exist_ok=True)
    app = Eve(import_name=__name__, settings=config, validator=RegistryValidator,
              data=RegistryMongo, instance_path=instance_path)
    store.init_app(app)
    guards.init_app(app)
    hooks.init_app(app)
    docs.init_app(app)
    app.add_url_rule("/health", "health", lambda: jsonify(status="ok", store=app.config["STORE_KIND"]))
    return app
