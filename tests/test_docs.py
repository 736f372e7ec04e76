"""OpenAPI document and Swagger UI page."""
from __future__ import annotations

import json

import settings


def test_openapi_lists_every_resource_and_the_bearer_scheme(client):
    doc = client.get("/api-docs").json
    for resource in settings.build_domain():
        assert f"/{resource}" in doc["paths"], resource
    assert doc["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"
    assert doc["security"] == [{"BearerAuth": []}]


def test_uuid_fields_are_documented_as_strings(client):
    compact = json.dumps(client.get("/api-docs").json, separators=(",", ":"))
    assert '"type":"uuid"' not in compact
    device = client.get("/api-docs").json["components"]["schemas"]["devices"]["properties"]["device_id"]
    assert device["type"] == "string" and device["format"] == "uuid"


def test_swagger_ui_is_served_from_local_files(client):
    page = client.get("/docs/")
    assert page.status_code == 200
    assert b"swagger-ui" in page.data
    assert b"cdn" not in page.data.lower()
    assert client.get("/docs/swagger-ui-bundle.js").status_code == 200


def test_health_needs_no_token(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert json.loads(response.data)["status"] == "ok"
