"""What one push says, decided when it is sent: nothing for a message deleted, hidden or read
meanwhile, or for someone who turned pushes off or left."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, joinedload

from jobchat.auth.queries import credential_live
from jobchat.conversations.models import Member
from jobchat.conversations.render import conversation_title
from jobchat.messages.models import HiddenMessage, Message
from jobchat.push.models import PushSubscription

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


def prepare_push(
    session: Session, user_id: int, subscription_id: int, message_id: int, now: datetime
) -> Push | None:
    """The push to send, or None when there is nothing to say any more."""
    sub = session.get(PushSubscription, subscription_id)
    if sub is None:
        return None  # unsubscribed, or the push service said it is gone
    if sub.user_id != user_id:
        return None  # the browser is someone else's now: this was decided for its old owner
    if sub.credential_id is not None and not credential_live(session, sub.credential_id, now):
        return None  # the sign-in that subscribed was revoked or ran out (or its owner left)
    # The author, the member's person and conversation each in the query that needs them,
    # not lazily one statement each: a push is sent for every message to every device.
    message = session.get(Message, message_id, options=[joinedload(Message.author)])
    if message is None or message.is_deleted or message.author_id == sub.user_id:
        return None
    member = session.get(
        Member,
        (message.conversation_id, sub.user_id),
        options=[joinedload(Member.user), joinedload(Member.conversation)],
    )
    if member is None:
        return None  # they left, or were removed, or deactivated (which ends memberships)
    user = member.user
    if not user.is_active or not user.push_notifications:
        return None
    if member.last_read_message_id >= message.id:
        return None  # read on another device meanwhile: nothing to tell
    if session.get(HiddenMessage, (message.id, user.id)) is not None:
        return None  # deleted "for me"
    conv = member.conversation
    author = message.author.name if message.author is not None else "jobchat"
    payload: dict[str, object] = {
        "type": "message",
        "conversation": conv.id,
        "message": message.id,
        "title": cut(conversation_title(session, user.id, conv), MAX_TITLE_CHARS),
        "body": preview(author, message.body),
        "url": conversation_url(conv.id, message.id),
    }
    return Push(
        subscription_id=sub.id,
        endpoint=sub.endpoint,
        p256dh=sub.p256dh,
        auth=sub.auth,
        payload=payload,
        # A device that was offline gets only the newest push of each conversation.
        topic=f"c{conv.id}",
        # Candidates hear back rarely and a reply may be time-sensitive (an interview slot).
        urgency="high" if user.is_candidate else "normal",
    )
