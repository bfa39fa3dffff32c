"""What each event's ``data`` says: context by external ids, people by id, name, kind and
external id, so that an ATS can put a candidate's reply on its own record.

Built only when some webhook takes the event (see ``actions.emit``): the builders load the
conversation's context, which a send does not otherwise need.
"""

from __future__ import annotations

from typing import Any

from jobchat.conversations.models import Conversation
from jobchat.directory.models import User
from jobchat.events.actions import json_time
from jobchat.messages.models import Delivery, Message

Data = dict[str, Any]


def person(user: User | None) -> Data:
    """As the API names people (``id`` is the external id there too); a message with no
    author is the system's."""
    if user is None:
        return {"id": None, "external_id": None, "name": "jobchat", "kind": "system"}
    return {"id": user.ext_id, "external_id": user.ext_id, "name": user.name, "kind": user.kind}


def conversation(conv: Conversation) -> Data:
    return {
        "id": conv.id,
        "kind": conv.kind,
        "status": conv.status,
        "job": conv.job.ext_id if conv.job is not None else None,
        "candidate": conv.candidate.ext_id if conv.candidate is not None else None,
        "application": conv.application.ext_id if conv.application is not None else None,
        "partner": conv.partner.ext_id if conv.partner is not None else None,
    }


def message_created(message: Message, conv: Conversation) -> Data:
    return {
        "conversation": conversation(conv),
        "message": {
            "id": message.id,
            "author": person(message.author),
            "channel": message.channel,
            "subject": message.subject,
            "body": message.body,
            "created_at": json_time(message.created_at),
            "attachments": [
                {
                    "id": a.id,
                    "filename": a.filename,
                    "content_type": a.content_type,
                    "size": a.size,
                }
                for a in message.attachments
            ],
            # True only in a delivery rewritten after a delete for everyone (scrub_message).
            "deleted": False,
        },
    }


def message_deleted(message: Message, conv: Conversation, by: User) -> Data:
    """No body nor subject: they are deleted for everyone."""
    return {
        "conversation": conversation(conv),
        "message": {
            "id": message.id,
            "author": person(message.author),
            "channel": message.channel,
            "created_at": json_time(message.created_at),
        },
        "deleted_by": person(by),
    }


def conversation_changed(conv: Conversation, role: str, by: User | None) -> Data:
    """``role``: created_by, ended_by or reopened_by."""
    return {"conversation": conversation(conv), role: person(by)}


def message_delivery(delivery: Delivery, message: Message, conv: Conversation) -> Data:
    return {
        "conversation": conversation(conv),
        "message": {"id": message.id, "channel": message.channel},
        "delivery": {
            "id": delivery.id,
            "channel": delivery.channel,
            "status": delivery.status,
            "bounced": bool(delivery.last_error and delivery.last_error.startswith("bounced")),
            "error": delivery.last_error,
            "error_code": delivery.error_code,
        },
        "recipient": person(delivery.recipient),
    }


def sms_consent(candidate: User, source: str, detail: str | None, by: User | None) -> Data:
    return {
        "candidate": person(candidate),
        "sms_consent": candidate.sms_consent,
        "source": source,
        "detail": detail,
        "changed_by": person(by) if by is not None else None,
    }
