"""The DER Registry: ``create_app()`` builds a configured Eve app."""

from __future__ import annotations

import os
from typing import Any

from eve import Eve
from flask import jsonify

import settings
from registry import admin_ui, auth, hooks, jobs
from registry.admin_ui import session
from registry.api import (
    advice_requests,
    data_layer,
    docs,
    guards,
    ingest,
    json_io,
    limits,
    observability,
    privacy,
    series,
)
from registry.api.data_layer import RegistryMongo
from registry.api.validator import RegistryValidator
from registry.auth import credentials, provider, revocation
from registry.auth.bearer import BearerAuth, PrincipalCache
from registry.hooks import access
from registry.jobs import records
from registry.market import reservations
from registry.ops import logs
from registry.store import idempotency_keys, mongo_setup, timeseries


def create_app(overrides: dict[str, Any] | None = None) -> Eve:
    """An Eve app on the embedded store (default) or MONGO_URI's MongoDB."""
    config = settings.as_dict()
    config.update(overrides or {})
    config["INSTANCE_PATH"] = os.path.abspath(config["INSTANCE_PATH"])
    logs.configure_for(config)  # first: every line from here on has the one format
    os.makedirs(config["INSTANCE_PATH"], exist_ok=True)
    config = credentials.resolve(config)  # configured secrets, or the demo's; none in a deployment fails here
    config = mongo_setup.configure(config)  # write / read concern; with MONGO_URI, no index at start
    app = Eve(
        import_name=__name__,
        settings=config,
        validator=RegistryValidator,
        data=RegistryMongo,
        auth=BearerAuth,
        instance_path=config["INSTANCE_PATH"],
    )
    if app.config.get("MONGO_URI"):
        mongo_setup.wait_for_server(app)  # a server still starting is waited for, with back-off
    app.extensions["principal_cache"] = PrincipalCache(auth.validator_from_config(app.config))
    app.extensions["access_policy"] = access.allowed_methods
    # the collections kept beside Eve's resources, whose indexes `run.py migrate` creates
    app.extensions["collection_indexes"] = [
        records.ensure_indexes,
        reservations.ensure_indexes,
        idempotency_keys.ensure_indexes,
        provider.ensure_indexes,
        revocation.ensure_indexes,
        session.ensure_indexes,
        timeseries.ensure_indexes,  # the measurements' day buckets
    ]
    data_layer.init_app(app)
    json_io.init_app(app)
    guards.init_app(app)
    limits.init_app(app)
    access.init_app(app)
    hooks.init_app(app)
    auth.init_app(app, lambda: app.data.driver.db)
    docs.init_app(app)
    admin_ui.init_app(app)
    advice_requests.init_app(app)
    series.init_app(app)  # GET /series: aggregated series
    ingest.init_app(app)  # POST /measurements: the fast path
    privacy.init_app(app)  # a prosumer's export and erasure
    app.add_url_rule("/health", "health", lambda: jsonify(status="ok", store=app.config["STORE_KIND"]))
    limits.exempt(app, "health")
    observability.init_app(app)  # /ready, /metrics, request ids, access lines
    jobs.init_app(app)  # last: it may start the worker thread
    return app
