"""A route's pydantic answer as a ready JSON response, for the hottest reads.

Given a model, FastAPI validates it again against ``response_model`` (for a plain ``def`` route,
on a second trip through the thread pool) before serialising it. A ``Response`` is passed
through untouched, so a hot route that builds its answer from its own models returns this: the
same bytes (pydantic's JSON of the model, as FastAPI's own fast path writes them), one
serialisation, no second validation. The route keeps ``response_model`` for the OpenAPI schema.
"""

from __future__ import annotations

from fastapi.responses import Response
from pydantic import BaseModel


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    return Response(
        content=model.__pydantic_serializer__.to_json(model),
        status_code=status_code,
        media_type="application/json",
    )
