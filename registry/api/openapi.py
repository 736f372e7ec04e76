"""What eve-swagger's OpenAPI document gets wrong or leaves out, put right.

Schemathesis checks every answer of the API against this document
(tests/test_api_fuzz.py), so it must say what the API really does:

* path parameters: eve-swagger gives them an empty example and, for a custom
  ``item_url``, an empty type; here they carry the route's own pattern;
* ``_links`` titles and hrefs are not URIs, ``_meta.page`` is an integer;
* responses: a projection or a role's hidden fields can leave out any field,
  so response schemas require none; the error codes the API answers are
  declared per verb; created / updated documents are described;
* request bodies: a PATCH changes some fields (nothing is required); a POST
  takes one document or a non-empty list of them (bulk insert);
* GeoJSON coordinates are numbers; ObjectIds are 24 hex digits;
* ``page`` and ``max_results`` are positive.
"""

from __future__ import annotations

import copy
import re
from typing import Any

ERROR = {"$ref": "#/components/responses/error"}
# what every operation can answer, then what each verb adds (docs/contract.md,
# "Roles and data scoping" and "Quality bars"; README "Bad input")
COMMON_ERRORS = ("400", "401", "403", "429")
VERB_ERRORS = {
    "get": ("404",),
    "post": ("409", "413", "415", "422"),
    "patch": ("404", "409", "412", "413", "415", "422", "428"),
    "put": ("404", "409", "412", "413", "415", "422", "428"),
    "delete": ("404", "409", "412", "428"),
}
OBJECT_ID = {"type": "string", "pattern": "^[a-f0-9]{24}$"}
WRITE_RESULT = {
    "type": "object",
    "properties": {
        "_status": {"type": "string"},
        "_id": {},
        "_etag": {"type": "string"},
        "_updated": {"type": "string"},
        "_created": {"type": "string"},
        "_links": {"type": "object"},
        "_items": {"type": "array", "items": {"type": "object"}},
    },
}
LINK = {"type": "object", "properties": {"title": {"type": "string"}, "href": {"type": "string"}}}


def complete(doc: dict[str, Any], domain: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The document, corrected in place and returned."""
    components = doc.setdefault("components", {})
    _fix_path_parameters(components.get("parameters", {}), domain)
    _fix_query_parameters(components.get("parameters", {}))
    _fix_envelopes(components.setdefault("schemas", {}))
    components["schemas"] = _fix_types(components["schemas"])
    _add_variants(components)
    _fix_own_ids(components["schemas"], domain)
    bulk = {settings.get("url", name): settings.get("bulk_enabled", True) for name, settings in domain.items()}
    for path, operations in doc.get("paths", {}).items():
        for verb, operation in operations.items():
            if isinstance(operation, dict) and verb in VERB_ERRORS:
                _fix_operation(verb, operation, path, bulk.get(path.strip("/").split("/")[0], False))
    return doc


def _fix_path_parameters(parameters: dict[str, Any], domain: dict[str, dict[str, Any]]) -> None:
    patterns = {}
    for settings in domain.values():
        title = settings.get("item_title", "")
        field = settings.get("item_lookup_field", "_id")
        patterns[f"{title}_{field}"] = _route_pattern(settings.get("item_url", 'regex("[a-f0-9]{24}")'))
        extra = settings.get("additional_lookup")
        if extra:
            patterns[f"{title}_{extra['field']}"] = _route_pattern(extra["url"])
    for key, parameter in parameters.items():
        if parameter.get("in") != "path":
            continue
        parameter.pop("example", None)
        parameter["schema"] = {"type": "string", "minLength": 1}
        if key in patterns:
            parameter["schema"]["pattern"] = patterns[key]


def _route_pattern(url_rule: str) -> str:
    """``regex("[a-f0-9]{24}")`` -> ``^(?:[a-f0-9]{24})$``."""
    match = re.fullmatch(r'regex\("(.*)"\)', url_rule)
    return f"^(?:{match.group(1)})$" if match else "^[^/]+$"


def _fix_own_ids(schemas: dict[str, Any], domain: dict[str, dict[str, Any]]) -> None:
    """A resource whose ``_id`` is not an ObjectId (measurements: ``<device_id>@<time>``)
    shows its route's pattern for ``_id``."""
    for settings in domain.values():
        if "item_url" not in settings or settings.get("item_lookup_field", "_id") != "_id":
            continue
        pattern = {"type": "string", "pattern": _route_pattern(settings["item_url"]), "readOnly": True}
        for suffix in ("", "_out", "_patch"):
            properties = schemas.get(f"{settings['item_title']}{suffix}", {}).get("properties", {})
            if "_id" in properties:
                properties["_id"] = pattern


def _fix_query_parameters(parameters: dict[str, Any]) -> None:
    for name in ("query__page", "query__max_results"):
        if name in parameters:
            parameters[name]["schema"] = {
                "type": "integer",
                "minimum": 1,
                "example": parameters[name]["schema"].get("example", 1),
            }


def _fix_envelopes(schemas: dict[str, Any]) -> None:
    links = schemas.get("response_links", {})
    for name in ("parent", "self", "next", "prev", "last"):
        links.setdefault("properties", {})[name] = LINK
    meta = schemas.get("response_metadata", {})
    meta.setdefault("properties", {})["page"] = {"type": "integer"}


def _fix_types(node: Any) -> Any:
    if isinstance(node, dict):
        fixed = {k: _fix_types(v) for k, v in node.items()}
        if fixed.get("format") == "objectid":
            fixed.update(OBJECT_ID)
            fixed.pop("format")
        properties = fixed.get("properties")
        if isinstance(properties, dict) and properties.get("type", {}).get("enum") == ["Point"]:
            # [longitude, latitude]: 3.0 cannot say per item, so both get longitude's range
            properties["coordinates"] = {
                **properties["coordinates"],
                "items": {"type": "number", "minimum": -180, "maximum": 180},
            }
        return fixed
    if isinstance(node, list):
        return [_fix_types(v) for v in node]
    return node


def _add_variants(components: dict[str, Any]) -> None:
    """``<name>_out`` (a response: no field required) and request bodies for PATCH and bulk POST."""
    schemas, bodies = components["schemas"], components.setdefault("requestBodies", {})
    for name in [n for n in schemas if n not in ("Error", "response_links", "response_metadata")]:
        _defaults_not_required(schemas[name])
        schemas[f"{name}_out"] = _without_required(schemas[name])
        schemas[f"{name}_patch"] = {k: v for k, v in schemas[name].items() if k != "required"}
    for name, body in list(bodies.items()):
        ref = body["content"]["application/json"]["schema"]["$ref"]
        single = {"$ref": ref}
        bodies[f"{name}_patch"] = _body(body, {"$ref": f"{ref}_patch"})
        bodies[f"{name}_post"] = _body(body, {"oneOf": [single, {"type": "array", "items": single, "minItems": 1}]})


def _defaults_not_required(schema: dict[str, Any]) -> None:
    """A field with a default may be left out (devices' device_name is "NO NAME" then)."""
    properties = schema.get("properties", {})
    if "required" in schema:
        schema["required"] = [f for f in schema["required"] if "default" not in properties.get(f, {})]


def _body(body: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": body.get("description", ""),
        "required": True,
        "content": {"application/json": {"schema": schema}},
    }


def _without_required(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_required(v) for k, v in node.items() if k != "required" or not isinstance(v, list)}
    if isinstance(node, list):
        return [_without_required(v) for v in node]
    return node


# POSTs that take an Idempotency-Key (registry/api/idempotency.py, docs/marketplace.md)
IDEMPOTENT_POSTS = frozenset({"/offers", "/contracts"})
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "a client's retry with the same key (and body) gets the first answer, never a second document",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
}


def _fix_operation(verb: str, operation: dict[str, Any], path: str, bulk: bool) -> None:
    responses = operation.setdefault("responses", {})
    if verb == "post" and path in IDEMPOTENT_POSTS:
        operation.setdefault("parameters", []).append(copy.deepcopy(IDEMPOTENCY_KEY))
    is_item = "{" in path
    for code in COMMON_ERRORS + VERB_ERRORS[verb]:
        if code != "404" or is_item:
            responses.setdefault(code, ERROR)
    for status in ("200", "201"):
        response = responses.get(status)
        if response is None:
            continue
        if "content" in response:
            response["content"] = _outputs(response["content"])
        elif verb in ("post", "patch", "put"):
            response["content"] = {"application/json": {"schema": copy.deepcopy(WRITE_RESULT)}}
    body = operation.get("requestBody", {}).get("$ref")
    if body and verb == "patch":
        operation["requestBody"] = {"$ref": f"{body}_patch"}
    elif body and verb == "post" and bulk:
        operation["requestBody"] = {"$ref": f"{body}_post"}


def _outputs(node: Any) -> Any:
    """Point response schemas at their ``_out`` variant."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/components/schemas/") and not ref.endswith(("response_links", "response_metadata")):
            return {**node, "$ref": f"{ref}_out"}
        return {k: _outputs(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_outputs(v) for v in node]
    return node
