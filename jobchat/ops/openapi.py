"""The OpenAPI document tells every error status a route can answer, in the one error shape.

Routes list the statuses that are theirs (404, 409, 429...). The ones that follow from a route's
shape are added here, for every route that has that shape, so that none is forgotten:
- 401 and 403 where a bearer credential is taken (none or a bad one; the wrong kind: a user
  token on an integration endpoint, the integration key on a user endpoint);
- 422 where anything is read from the path, the query or the body (and in our error shape, not
  FastAPI's HTTPValidationError, which no route ever answers);
- 413 where a body is taken (BodyLimit answers before the route runs);
- 503 everywhere: the database is busy or unreachable.

The health probes are the exception: they answer for themselves (``/healthz`` touches nothing
that can fail; ``/readyz``'s 503 is its own report naming the failing check).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from jobchat.http_errors import error_answer

_METHODS = ("get", "put", "post", "patch", "delete", "head", "options")
_UNUSED = ("HTTPValidationError", "ValidationError")
PROBES = frozenset({"/healthz", "/readyz"})


def document_errors(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and so /openapi.json and /docs) list those statuses."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            _add_errors(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_errors(schema: dict[str, Any]) -> None:
    for route, path in schema.get("paths", {}).items():
        if route in PROBES:
            continue
        for method in _METHODS:
            operation = path.get(method)
            if operation is None:
                continue
            answers: dict[str, Any] = operation.setdefault("responses", {})
            statuses = [503]
            if operation.get("security"):
                statuses += [401, 403]
            if operation.get("parameters") or "requestBody" in operation:
                statuses.append(422)
            if "requestBody" in operation:
                statuses.append(413)
            for status in statuses:
                existing = answers.get(str(status))
                if existing is None or _is_fastapis_422(existing):
                    answers[str(status)] = error_answer(status)
    components = schema.get("components", {}).get("schemas", {})
    for name in _UNUSED:
        components.pop(name, None)


def _is_fastapis_422(answer: dict[str, Any]) -> bool:
    content = answer.get("content", {}).get("application/json", {})
    return "HTTPValidationError" in str(content.get("schema", {}))
