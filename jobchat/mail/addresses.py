"""Reply addresses, bounce addresses and Message-IDs: signed, so nobody can make up another
person's.

A reply address ``r-<conversation>-<user>-<signature>@<reply domain>`` is unique to one
recipient in one conversation: a reply to it can only be that member's. A bounce address
``b-<kind>-<ident>-<signature>@<reply domain>`` (VERP) is the envelope sender of one email:
a delivery failure report sent to it is about that email, and only its recipient's mail
servers ever saw the address. Lowercase throughout, since mail systems may fold the case of
the local part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import getaddresses

from jobchat.auth.signing import sign, verify

_REPLY = re.compile(r"^r-(\d{1,18})-(\d{1,18})-([a-z2-7]{10,40})$")
_BOUNCE = re.compile(r"^b-([a-z]{1,8})-(\d{1,18})-([a-z2-7]{10,40})$")
_MESSAGE_ID = re.compile(r"^<([a-z]{1,8})-(\d{1,18})-([a-z2-7]{10,40})@([^<>@\s]+)>$")
BOUNCE_LOCAL_PART = "bounces"


@dataclass(frozen=True)
class MailKeys:
    key: bytes
    domain: str  # the reply domain

    def reply_address(self, conversation_id: int, user_id: int) -> str:
        signature = sign(self.key, "reply", conversation_id, user_id)
        return f"r-{conversation_id}-{user_id}-{signature}@{self.domain}"

    def parse_reply_address(self, address: str) -> tuple[int, int] | None:
        """(conversation id, user id) of a genuine reply address; None for anything else."""
        local, _, domain = address.strip().lower().rpartition("@")
        if domain != self.domain.lower():
            return None
        match = _REPLY.match(local)
        if match is None:
            return None
        conversation_id, user_id = int(match[1]), int(match[2])
        if not verify(self.key, match[3], "reply", conversation_id, user_id):
            return None
        return conversation_id, user_id

    def message_id(self, kind: str, ident: int) -> str:
        """The Message-ID of our email ``kind``/``ident``: the same on every retry, so that a
        mail client recognises an email that went out twice."""
        return f"<{kind}-{ident}-{sign(self.key, 'message-id', kind, ident)}@{self.domain}>"

    def parse_message_id(self, header: str) -> tuple[str, int] | None:
        """(kind, ident) of one of our genuine Message-IDs; None for anything else."""
        match = _MESSAGE_ID.match(header.strip().lower())
        if match is None or match[4] != self.domain.lower():
            return None
        kind, ident = match[1], int(match[2])
        if not verify(self.key, match[3], "message-id", kind, ident):
            return None
        return kind, ident

    def bounce_address(self, message_id: str) -> str:
        """The envelope sender of our email with this Message-ID: its bounces come back here,
        and only there do they count. (The shared ``bounces@`` for a Message-ID not ours.)"""
        found = self.parse_message_id(message_id)
        if found is None:
            return f"{BOUNCE_LOCAL_PART}@{self.domain}"
        kind, ident = found
        return f"b-{kind}-{ident}-{sign(self.key, 'bounce', kind, ident)}@{self.domain}"

    def bounced_message_id(self, address: str) -> str | None:
        """The Message-ID of the email whose genuine bounce address this is; None otherwise."""
        local, _, domain = address.strip().lower().rpartition("@")
        if domain != self.domain.lower():
            return None
        match = _BOUNCE.match(local)
        if match is None:
            return None
        kind, ident = match[1], int(match[2])
        if not verify(self.key, match[3], "bounce", kind, ident):
            return None
        return self.message_id(kind, ident)

    def is_ours(self, address: str) -> bool:
        return address.strip().lower().rpartition("@")[2] == self.domain.lower()


def addresses_in(*header_values: str | None) -> list[str]:
    """The bare addresses in address headers (To, Cc, Delivered-To, ...), lowercase."""
    values = [v for v in header_values if v]
    return [address.lower() for _, address in getaddresses(values) if "@" in address]
