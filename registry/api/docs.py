"""API documentation: eve-swagger's OpenAPI document and a Swagger UI page."""

from __future__ import annotations

import json
from typing import Any

from eve import Eve
from eve_swagger import get_swagger_blueprint
from flask import Response, current_app
from flask_swagger_ui import get_swaggerui_blueprint

from registry.api import advice_requests, privacy, series
from registry.api import openapi as api_document

BEARER = {"BearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}


def fix_custom_types(node: Any) -> Any:
    """eve-swagger copies unknown Cerberus types verbatim; OpenAPI has no 'uuid'."""
    if isinstance(node, dict):
        if node.get("type") == "uuid":
            node = {**node, "type": "string", "format": "uuid"}
        return {k: fix_custom_types(v) for k, v in node.items()}
    if isinstance(node, list):
        return [fix_custom_types(v) for v in node]
    return node


def _finish_document(response: Response) -> Response:
    if response.mimetype != "application/json" or response.status_code != 200:
        return response
    doc = api_document.complete(fix_custom_types(json.loads(response.get_data())), current_app.config["DOMAIN"])
    doc.setdefault("paths", {}).update(advice_requests.openapi_paths())
    doc["paths"].update(series.openapi_paths())
    doc["paths"].update(privacy.openapi_paths())
    components = doc.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(BEARER)
    doc["security"] = [{"BearerAuth": []}]
    response.set_data(json.dumps(doc))
    return response


def init_app(app: Eve) -> None:
    # the UI page is registered first so it, not eve-swagger's CDN-based
    # ReDoc page, answers /docs: this machine and many deployments are offline
    app.register_blueprint(get_swaggerui_blueprint("/docs", "/api-docs", config={"app_name": "DER Registry API"}))
    swagger = get_swagger_blueprint()
    swagger.after_request(_finish_document)
    app.register_blueprint(swagger)
