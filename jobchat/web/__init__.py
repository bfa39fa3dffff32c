"""The web app: server-rendered pages for every persona, live over the event stream."""

from __future__ import annotations

from fastapi import APIRouter

from jobchat.web.bulk import router as bulk
from jobchat.web.candidates import router as candidates
from jobchat.web.conversation import router as conversation
from jobchat.web.inbox import router as inbox
from jobchat.web.jobs import router as jobs
from jobchat.web.pages import router as pages
from jobchat.web.portal import router as portal
from jobchat.web.pwa import router as pwa
from jobchat.web.scheduled import router as scheduled
from jobchat.web.search_page import router as search
from jobchat.web.settings import router as settings
from jobchat.web.start import router as start
from jobchat.web.templates_page import router as templates_page

# start before conversation: its /conversations/new is not a conversation id.
routers: tuple[APIRouter, ...] = (
    pages,
    inbox,
    start,
    conversation,
    candidates,
    bulk,
    jobs,
    portal,
    settings,
    templates_page,
    pwa,
    scheduled,
    search,
)
