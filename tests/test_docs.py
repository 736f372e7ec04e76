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


def test_health_needs_no_token(app):
    anonymous = app.test_client()  # no Authorization header at all
    response = anonymous.get("/health")
    assert response.status_code == 200
    assert json.loads(response.data) == {"status": "ok", "store": app.config["STORE_KIND"]}
    assert anonymous.get("/devices").status_code == 401  # the same client is refused where a token is needed


# the document schemathesis checks the API against (tests/test_api_fuzz.py) says what the API does
def test_item_path_parameters_carry_the_route_pattern(client):
    parameters = client.get("/api-docs").json["components"]["parameters"]
    assert parameters["devices_device_id"]["schema"] == {
        "type": "string",
        "minLength": 1,
        "pattern": "^(?:[a-zA-Z0-9-]+)$",
    }
    assert parameters["offer__id"]["schema"]["pattern"] == "^(?:[a-f0-9]{24})$"
    assert all("example" not in p for p in parameters.values() if p["in"] == "path")


def test_error_responses_and_bodies_are_declared_per_verb(client):
    paths = client.get("/api-docs").json["paths"]
    patch = paths["/devices/{devicesId}"]["patch"]
    assert {"400", "401", "403", "404", "409", "412", "422", "428"} <= set(patch["responses"])
    assert patch["requestBody"] == {"$ref": "#/components/requestBodies/devices_patch"}
    assert paths["/measurements"]["post"]["requestBody"] == {"$ref": "#/components/requestBodies/measurement_post"}
    assert paths["/contracts"]["post"]["requestBody"] == {"$ref": "#/components/requestBodies/contract"}  # no bulk
    listing = paths["/devices"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listing["properties"]["_items"]["items"] == {"$ref": "#/components/schemas/devices_out"}


def test_response_schemas_require_nothing_and_envelopes_are_right(client):
    schemas = client.get("/api-docs").json["components"]["schemas"]
    assert "required" not in schemas["devices_out"] and "required" not in schemas["devices_patch"]
    assert "device_name" not in schemas["devices"]["required"]  # it has a default
    assert schemas["response_metadata"]["properties"]["page"] == {"type": "integer"}
    assert schemas["response_links"]["properties"]["self"]["properties"]["href"] == {"type": "string"}
    coordinates = schemas["devices"]["properties"]["location"]["properties"]["coordinates"]
    assert coordinates["items"]["type"] == "number"


def test_advice_requests_are_documented(client):
    paths = client.get("/api-docs").json["paths"]
    assert set(paths["/advice-requests"]) == {"post"}
    assert "202" in paths["/advice-requests"]["post"]["responses"]
    assert "202" in paths["/advice-requests/{job_id}/result"]["get"]["responses"]
