"""Imports every model so that ``Base.metadata`` knows every table (for Alembic and tests)."""

from jobchat.activity.models import Activity
from jobchat.auth.models import ApiKey, Credential, ServerSecret
from jobchat.conversations.models import Conversation, Member
from jobchat.db.base import Base
from jobchat.directory.models import Application, Job, JobPartner, JobTeam, Organization, User
from jobchat.events.models import Event
from jobchat.files.models import Attachment
from jobchat.jobqueue.models import QueuedJob
from jobchat.mail.models import InboundEmail, SentEmail
from jobchat.messages.models import Delivery, HiddenMessage, Message
from jobchat.privacy.models import AuditEntry
from jobchat.push.models import PushSubscription
from jobchat.scheduling.bulk.models import BulkMessage, BulkRecipient
from jobchat.scheduling.models import ScheduledMessage
from jobchat.sms.models import InboundSms, SmsConsentChange, SmsStatusReport
from jobchat.templates.models import Template
from jobchat.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery

__all__ = [
    "Activity",
    "ApiKey",
    "Application",
    "Attachment",
    "AuditEntry",
    "Base",
    "BulkMessage",
    "BulkRecipient",
    "Conversation",
    "Credential",
    "Delivery",
    "Event",
    "HiddenMessage",
    "InboundEmail",
    "InboundSms",
    "Job",
    "JobPartner",
    "JobTeam",
    "Member",
    "Message",
    "Organization",
    "PushSubscription",
    "QueuedJob",
    "ScheduledMessage",
    "SentEmail",
    "ServerSecret",
    "SmsConsentChange",
    "SmsStatusReport",
    "Template",
    "User",
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
]
