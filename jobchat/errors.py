"""The one error shape: ``{"error": {"code", "message", "fields"?}}``.

Actions and access checks raise these; the app's handlers render them. Nothing a client
sends should surface as anything else.
"""

from __future__ import annotations


class AppError(Exception):
    status = 400
    code = "bad_request"
    # Seconds a client should wait before trying again (sent as Retry-After), for an error
    # that passes by itself (a store that is down).
    retry_after: int | None = None

    def __init__(
        self, message: str, *, code: str | None = None, fields: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.fields = fields

    def to_body(self) -> dict[str, object]:
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        return {"error": error}


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"


class Invalid(AppError):
    """422: names each bad field."""

    status = 422
    code = "invalid"

    def __init__(
        self, fields: dict[str, str], message: str | None = None, *, code: str | None = None
    ) -> None:
        super().__init__(
            message or "; ".join(f"{k}: {v}" for k, v in fields.items()), fields=fields, code=code
        )


class RateLimited(AppError):
    status = 429
    code = "rate_limited"


class UnsupportedMediaType(AppError):
    status = 415
    code = "unsupported_media_type"
