"""What one push says, decided when it is sent: nothing for a message deleted, hidden or read
meanwhile, or for someone who turned pushes off or left."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, aliased

from jobchat.conversations.models import Conversation, Member
from jobchat.conversations.render import conversation_title
from jobchat.directory.models import User, UserKind
from jobchat.messages.models import HiddenMessage, Message
from jobchat.push.models import PushSubscription
from jobchat.push.queries import signed_in

# A notification shows two or three lines: this is plenty, and keeps every push far below the
# 4 KB push services take.
MAX_BODY_CHARS = 200
# Titles are short in practice; names of up to 200 characters each could make one long enough
# (in 4-byte characters) to take the payload past the 4 KB a push service must accept.
MAX_TITLE_CHARS = 150
ELLIPSIS = "…"


@dataclass(frozen=True)
class Push:
    subscription_id: int
    endpoint: str
    p256dh: str
    auth: str
    payload: dict[str, object]
    topic: str
    urgency: str

    def data(self) -> bytes:
        return json.dumps(self.payload, ensure_ascii=False, separators=(",", ":")).encode()


def cut(text: str, limit: int) -> str:
    """At most ``limit`` characters, an ellipsis among them when something was cut."""
    if len(text) <= limit:
        return text
    return text[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS


def preview(author: str, text: str) -> str:
    """The author's name, a colon and the text on one line, cut to MAX_BODY_CHARS."""
    return cut(f"{author}: {' '.join(text.split())}".strip(), MAX_BODY_CHARS)


def conversation_url(conversation_id: int, message_id: int) -> str:
    return f"/conversations/{conversation_id}?message={message_id}"


# Everything a push checks, in one statement (built once: building it per push cost more than
# running it).
_author = aliased(User, name="author")
_PUSH = (
    select(
        PushSubscription.user_id.label("owner"),
        PushSubscription.endpoint,
        PushSubscription.p256dh,
        PushSubscription.auth,
        signed_in(bindparam("now")).label("signed_in"),
        Message.id.label("message_id"),
        Message.conversation_id,
        Message.author_id,
        Message.deleted_at,
        Message.body,
        _author.name.label("author_name"),
        Member.last_read_message_id,
        User.deactivated_at,
        User.push_notifications,
        User.kind.label("user_kind"),
        Conversation.kind.label("conversation_kind"),
        HiddenMessage.message_id.label("hidden"),
    )
    .select_from(PushSubscription)
    .outerjoin(Message, Message.id == bindparam("message_id"))
    .outerjoin(_author, _author.id == Message.author_id)
    .outerjoin(
        Member,
        (Member.conversation_id == Message.conversation_id)
        & (Member.user_id == PushSubscription.user_id),
    )
    .outerjoin(User, User.id == Member.user_id)
    .outerjoin(Conversation, Conversation.id == Member.conversation_id)
    .outerjoin(
        HiddenMessage,
        (HiddenMessage.message_id == Message.id)
        & (HiddenMessage.user_id == PushSubscription.user_id),
    )
    .where(PushSubscription.id == bindparam("subscription_id"))
)


def prepare_push(
    session: Session, user_id: int, subscription_id: int, message_id: int, now: datetime
) -> Push | None:
    """The push to send, or None when there is nothing to say any more.

    Everything it checks comes in one statement (and the title in one more): a push is sent
    for every message to every device, and one lookup each (the subscription, its sign-in, the
    message, the member, a hidden mark) was a third of the worker's work per message."""
    params = {"subscription_id": subscription_id, "message_id": message_id, "now": now}
    row = session.execute(_PUSH, params).one_or_none()
    if row is None:
        return None  # unsubscribed, or the push service said it is gone
    if row.owner != user_id:
        return None  # the browser is someone else's now: this was decided for its old owner
    if not row.signed_in:
        return None  # the sign-in that subscribed was revoked or ran out
    if row.message_id is None or row.deleted_at is not None or row.author_id == user_id:
        return None
    if row.last_read_message_id is None:
        return None  # they left, or were removed, or deactivated (which ends memberships)
    if row.deactivated_at is not None or not row.push_notifications:
        return None
    if row.last_read_message_id >= row.message_id:
        return None  # read on another device meanwhile: nothing to tell
    if row.hidden is not None:
        return None  # deleted "for me"
    conv_id = int(row.conversation_id)
    title = conversation_title(session, user_id, conv_id, row.conversation_kind)
    payload: dict[str, object] = {
        "type": "message",
        "conversation": conv_id,
        "message": row.message_id,
        "title": cut(title, MAX_TITLE_CHARS),
        "body": preview(row.author_name or "jobchat", row.body or "Sent a file"),
        "url": conversation_url(conv_id, row.message_id),
    }
    return Push(
        subscription_id=subscription_id,
        endpoint=row.endpoint,
        p256dh=row.p256dh,
        auth=row.auth,
        payload=payload,
        # A device that was offline gets only the newest push of each conversation.
        topic=f"c{conv_id}",
        # Candidates hear back rarely and a reply may be time-sensitive (an interview slot).
        urgency="high" if row.user_kind == UserKind.candidate else "normal",
    )
