"""Checking responses against TGI's published OpenAPI document (../shared/tgi/openapi.json)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource

SPEC_PATH = Path(__file__).resolve().parents[1].parent / "shared" / "tgi" / "openapi.json"


def _nullable_wrappers(node: Any) -> Any:
    """Read `{"allOf": [X], "nullable": true}` as OpenAPI 3.0 means it: X, or null.

    A JSON Schema validator applies `allOf` to null too and rejects it; TGI itself sends
    `"details": null` where the spec writes that pattern.
    """
    if isinstance(node, list):
        return [_nullable_wrappers(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _nullable_wrappers(value) for key, value in node.items()}
    if node.get("nullable") is True and "allOf" in node:
        rest = {k: v for k, v in node.items() if k not in {"allOf", "nullable", "default"}}
        return {**rest, "anyOf": [{"allOf": node["allOf"]}, {"enum": [None]}]}
    return node


@cache
def spec() -> dict[str, Any]:
    if not SPEC_PATH.is_file():
        msg = f"TGI's OpenAPI document is missing at {SPEC_PATH}; the conformance tests need ../shared"
        raise FileNotFoundError(msg)
    loaded: dict[str, Any] = _nullable_wrappers(json.loads(SPEC_PATH.read_text(encoding="utf-8")))
    return loaded


_URI = "urn:tgi-openapi"


@cache
def _registry() -> Registry[Any]:
    registry: Registry[Any] = Registry().with_resource(_URI, Resource.opaque(spec()))
    return registry


def _pointer(*parts: str) -> dict[str, str]:
    escaped = "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)
    return {"$ref": f"{_URI}#/{escaped}"}


def _check(schema: dict[str, str], instance: Any) -> None:
    # Every $ref in the spec is local to it, so validation starts from a pointer into the spec.
    OAS30Validator(schema, registry=_registry()).validate(instance)


def response_schema(path: str, method: str, status: int, content_type: str) -> dict[str, Any]:
    """The schema the spec gives for one response of one route."""
    responses = spec()["paths"][path][method]["responses"]
    content = responses[str(status)].get("content") or {}
    if content_type not in content:
        msg = f"{method.upper()} {path} {status}: the spec documents {sorted(content)}, not {content_type}"
        raise AssertionError(msg)
    schema: dict[str, Any] = content[content_type]["schema"]
    return schema


def validate(
    instance: Any, path: str, method: str, status: int, content_type: str = "application/json"
) -> None:
    """Raise if `instance` does not match the documented schema."""
    if str(status) not in spec()["paths"][path][method]["responses"]:
        msg = f"{method.upper()} {path}: status {status} is not documented"
        raise AssertionError(msg)
    response_schema(path, method, status, content_type)  # documented at all?
    _check(
        _pointer("paths", path, method, "responses", str(status), "content", content_type, "schema"), instance
    )


def validate_named(instance: Any, name: str) -> None:
    """Raise if `instance` does not match the component schema `name`, e.g. `StreamResponse`."""
    _check(_pointer("components", "schemas", name), instance)


def sse_events(body: str) -> list[str]:
    """The `data` payloads of a server-sent-event body, checking the framing on the way."""
    assert body.endswith("\n\n"), "an SSE body ends with a blank line"
    payloads = []
    for block in body.split("\n\n")[:-1]:
        assert block.startswith("data: "), f"every event is a `data: ` line, got {block[:40]!r}"
        payloads.append(block[len("data: ") :])
    return payloads
