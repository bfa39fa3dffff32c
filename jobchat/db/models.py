"""Imports every model so that ``Base.metadata`` knows every table (for Alembic and tests)."""

from jobchat.auth.models import ApiKey, Credential
from jobchat.conversations.models import Conversation, Member
from jobchat.db.base import Base
from jobchat.directory.models import Application, Job, JobPartner, JobTeam, Organization, User
from jobchat.events.models import Event
from jobchat.messages.models import Delivery, HiddenMessage, Message

__all__ = [
    "ApiKey",
    "Application",
    "Base",
    "Conversation",
    "Credential",
    "Delivery",
    "Event",
    "HiddenMessage",
    "Job",
    "JobPartner",
    "JobTeam",
    "Member",
    "Message",
    "Organization",
    "User",
]
