"""The OpenAPI document as clients (and schemathesis) read it: every error atende can
answer is declared, with the shape it really has."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException
from fastapi.openapi.utils import get_openapi
from pydantic import BeforeValidator

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["detail"],
    "properties": {"detail": {
        "description": "what to fix: a sentence, or for fields that fail validation a list "
                       "naming each one",
        "anyOf": [{"type": "string"},
                  {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}}],
    }},
    "examples": [{"detail": "trunk_id: no trunk with id 'nope'"}],
}
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
_WORDS = {
    "400": "the body could not be read (not JSON, or not the declared content type)",
    "401": "no API key, or an unknown or revoked one",
    "404": "nothing with that id",
    "422": "a field is missing or wrong; the message names it",
}


def _iso_only(value: object) -> object:
    # Pydantic also takes a bare number for a datetime (Unix time); the API promises ISO
    # 8601, and a number there is more likely a mistake than a timestamp.
    if isinstance(value, int | float) or (isinstance(value, str) and
                                          value.strip().lstrip("-").replace(".", "", 1)
                                          .isdigit()):
        raise ValueError("an ISO 8601 time is expected, e.g. 2026-01-31T09:00:00Z")
    return value


IsoTime = Annotated[datetime, BeforeValidator(_iso_only)]


def require_zones(**times: datetime | None) -> None:
    """A 422 naming the first of ``times`` given without a zone: which instant a naive
    time means depends on a zone nobody said."""
    for name, value in times.items():
        if value is not None and value.tzinfo is None:
            raise HTTPException(422, f"{name}: give a time zone, e.g. 2026-01-31T09:00:00Z")


def install(app: FastAPI, keyed_paths: set[str]) -> None:
    """Make ``app`` serve the completed document. ``keyed_paths`` need an API key."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            complete(schema, keyed_paths)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(schema: dict[str, Any], keyed_paths: set[str]) -> None:
    """Declare, on every operation, the errors it can answer: 401 where a key is needed,
    404 where the path names something, 400 and 422 where there is input. All of them
    have the one Error shape. An id in a path cannot be empty (the path would be
    another one)."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in schema.get("paths", {}).items():
        for op in operations.values():
            responses = op.setdefault("responses", {})
            wanted = []
            if path in keyed_paths:
                wanted.append("401")
            for param in op.get("parameters", []):
                if param.get("in") == "path" and param["schema"].get("type") == "string":
                    param["schema"].setdefault("minLength", 1)
            if "{" in path:
                wanted.append("404")
            if "requestBody" in op:
                wanted.append("400")
            if "requestBody" in op or op.get("parameters"):
                wanted.append("422")
            for status in wanted:
                responses.setdefault(status, {"description": _WORDS[status]})
            for status, entry in responses.items():
                if status.startswith("4"):
                    entry["content"] = _ERROR
