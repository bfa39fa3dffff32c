"""What the webhooks API takes and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from jobchat.inputs import Line, Text
from jobchat.webhooks.models import (
    MAX_URL_CHARS,
    EventType,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)


class WebhookIn(BaseModel):
    url: Annotated[Text, Field(min_length=1, max_length=MAX_URL_CHARS)] = Field(
        description="Where events are POSTed: https:// on a public address."
    )
    # Plain strings, so that unknown ones are named in the 422 (rather than an enum's list).
    events: Annotated[
        list[Annotated[str, Field(max_length=100)]], Field(min_length=1, max_length=20)
    ] = Field(
        description="The event types to receive: " + ", ".join(e.value for e in EventType) + "."
    )
    description: Annotated[Line, Field(max_length=500)] | None = None


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[str]
    description: str | None
    created_at: datetime
    enabled: bool = Field(
        description="False once it failed for three days, or its endpoint answered 410 Gone "
        "(see disabled_reason)."
    )
    disabled_at: datetime | None
    disabled_reason: str | None
    failing_since: datetime | None = Field(
        description="The first failed attempt since the last success; null when not failing."
    )
    last_success_at: datetime | None
    previous_secret_until: datetime | None = Field(
        description="After a rotation: until when the old secret's signature is sent too."
    )

    @classmethod
    def of(cls, webhook: Webhook) -> WebhookOut:
        return cls(
            id=webhook.id,
            url=webhook.url,
            events=list(webhook.events),
            description=webhook.description,
            created_at=webhook.created_at,
            enabled=webhook.disabled_at is None,
            disabled_at=webhook.disabled_at,
            disabled_reason=webhook.disabled_reason,
            failing_since=webhook.failing_since,
            last_success_at=webhook.last_success_at,
            previous_secret_until=webhook.previous_until,
        )


class WebhookWithSecret(WebhookOut):
    secret: str = Field(
        description="whsec_ and the base64 of 32 random bytes: the key of the signatures. "
        "Shown only here (at creation and rotation)."
    )

    @classmethod
    def with_secret(cls, webhook: Webhook) -> WebhookWithSecret:
        return cls(**WebhookOut.of(webhook).model_dump(), secret=webhook.secret)


class WebhookList(BaseModel):
    items: list[WebhookOut]


class AttemptOut(BaseModel):
    id: int
    event_id: str = Field(description="The event's webhook-id header (the same on each retry).")
    event_type: str
    delivery_status: str = Field(
        description="The event's state: pending, delivered, failed, cancelled."
    )
    status_code: int | None = Field(description="The endpoint's answer; null when none came.")
    error: str | None = Field(description="Why the attempt failed; null for a 2xx.")
    attempted_at: datetime
    duration_ms: int

    @classmethod
    def of(cls, attempt: WebhookAttempt, delivery: WebhookDelivery) -> AttemptOut:
        return cls(
            id=attempt.id,
            event_id=delivery.msg_id,
            event_type=delivery.type,
            delivery_status=delivery.status,
            status_code=attempt.status_code,
            error=attempt.error,
            attempted_at=attempt.attempted_at,
            duration_ms=attempt.duration_ms,
        )


class AttemptList(BaseModel):
    items: list[AttemptOut]
