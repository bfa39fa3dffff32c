"""Starting a conversation from the pages: "Start chat" opens a composer that shows what the
chat will be (its title, who will be in it, the channels), and the conversation is made with
its first message when the person sends, so no page ever leaves an empty one behind.

- ``GET /conversations/new?kind=…&job=…&candidate=…&application=…&partner=…&with_user=…``:
  the composer; straight to the conversation when it exists already.
- ``POST /conversations/new``: the conversation and its first message in one transaction, then
  the conversation. A resend with the same idempotency key makes nothing twice; bad input is
  the composer again with the problem beside the field (422), never an error page.
- ``POST /conversations/start``: the older form that opens an empty conversation, kept for an
  ATS that may post to it; none of our pages does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from jobchat import access
from jobchat.auth.embed import local_path
from jobchat.config import Settings
from jobchat.conversations.actions import do_start_conversation
from jobchat.conversations.context import Context, ContextRefs
from jobchat.conversations.membership import context_members
from jobchat.conversations.models import Kind
from jobchat.conversations.schemas import Names
from jobchat.directory.models import User
from jobchat.errors import AppError, Conflict, Invalid, RateLimited
from jobchat.inputs import QueryRef
from jobchat.messages.actions import Limits, Outgoing
from jobchat.messages.channels import ChannelOption, channel_options
from jobchat.messages.models import Channel
from jobchat.messages.requests import start_as
from jobchat.web.labels import label_of
from jobchat.web.layout import frame
from jobchat.web.templating import render
from jobchat.web.thread import CHANNEL_LABELS
from jobchat.web.viewer import FormViewer, PageViewer, Viewer

router = APIRouter(include_in_schema=False)

FormRef = Annotated[str | None, Form(min_length=1, max_length=200)]

# What each kind of chat is, in the words of the person starting it.
KIND_LABELS = {
    Kind.application: "Chat with the candidate",
    Kind.case: "Case chat",
    Kind.candidate_partner: "One-to-one chat",
    Kind.agency: "Agency thread",
    Kind.agency_private: "Private agency thread",
    Kind.job_partner: "Partner chat",
    Kind.job_partners: "All partners",
    Kind.job_relocation: "Relocation chat",
}
KIND_ABOUT = {
    Kind.application: "You and the hiring team, with the candidate, about this application.",
    Kind.case: "The candidate, their source partner and the hiring team, about this case.",
    Kind.candidate_partner: "The candidate and their source partner's team.",
    Kind.agency: "The hiring team and the agency user who submitted the candidate.",
    Kind.agency_private: "Only the two of you: nobody else sees it.",
    Kind.job_partner: "The hiring team and this partner's team, about the job.",
    Kind.job_partners: "The hiring team and every partner of the job, in one group.",
    Kind.job_relocation: "The hiring team, the partners and the candidates who accepted an offer.",
}


@dataclass(frozen=True)
class Person:
    name: str
    # Their organisation, or "Candidate".
    side: str
    me: bool


@dataclass(frozen=True)
class Draft:
    """The composer's read-model: what the conversation will be once the first message goes."""

    kind: Kind
    refs: ContextRefs
    label: str
    title: str
    about: str
    people: list[Person]
    channels: list[ChannelOption]
    back: str

    @property
    def fields(self) -> dict[str, str]:
        """The hidden fields that name the context again when the form is sent."""
        return {k: v for k, v in vars(self.refs).items() if v is not None}


def _people(session: Session, user: User, context: Context) -> list[Person]:
    out = [
        Person(
            p.name,
            p.organization.name if p.organization else "Candidate",
            p.id == user.id,
        )
        for p in context_members(session, context)
    ]
    # The candidate first (the one the chat is most about), then everyone else by name.
    return sorted(out, key=lambda p: (p.side != "Candidate", p.name.lower()))


def _about(user: User, kind: Kind, context: Context) -> str:
    """Who the chat is for, from the reader's side: a candidate or the agency user reads "you",
    not themself in the third person."""
    if kind is Kind.candidate_partner and user.is_candidate:
        return "You and your source partner's team."
    if (
        kind is Kind.agency
        and context.agency_user is not None
        and user.id == context.agency_user.id
    ):
        return "You and the hiring team, about this candidate."
    return KIND_ABOUT[kind]


def _back(user: User, context: Context) -> str:
    """The page the chat belongs to: where "Cancel" goes."""
    if user.is_candidate:
        return "/portal"
    if context.kind in (Kind.job_partner, Kind.job_partners, Kind.job_relocation):
        assert context.job is not None
        return f"/jobs/{quote(context.job.ext_id, safe='')}?tab=chats"
    assert context.candidate is not None
    path = f"/candidates/{quote(context.candidate.ext_id, safe='')}"
    if context.application is None:
        return path + "?tab=messages"
    tab = "agency" if context.kind in (Kind.agency, Kind.agency_private) else "messages"
    return f"{path}?tab={tab}&application={quote(context.application.ext_id, safe='')}"


def _section(user: User, kind: Kind) -> str:
    """The navigation entry the composer belongs under: where its "Start chat" was."""
    if not user.is_staff:
        return "portal"
    return (
        "jobs"
        if kind in (Kind.job_partner, Kind.job_partners, Kind.job_relocation)
        else ("candidates")
    )


def _draft(
    session: Session,
    user: User,
    kind: Kind,
    refs: ContextRefs,
    context: Context,
    settings: Settings,
) -> Draft:
    names = Names(
        job_title=context.job.title if context.job else None,
        employer=context.job.employer.name if context.job else None,
        candidate_id=context.candidate.id if context.candidate else None,
        candidate=context.candidate.name if context.candidate else None,
        partner=context.partner.name if context.partner else None,
        employer_user=context.employer_user.name if context.employer_user else None,
        agency_user=context.agency_user.name if context.agency_user else None,
    )
    return Draft(
        kind=kind,
        refs=refs,
        label=KIND_LABELS[kind],
        # The title the inbox and the thread will show this reader once it exists.
        title=label_of(kind, names, user).title,
        about=_about(user, kind, context),
        people=_people(session, user, context),
        channels=channel_options(session, user, kind, context.candidate, Limits.of(settings)),
        back=_back(user, context),
    )


def _refs(
    job: str | None,
    candidate: str | None,
    application: str | None,
    partner: str | None,
    with_user: str | None,
) -> ContextRefs:
    return ContextRefs(
        job=job, candidate=candidate, application=application, partner=partner, with_user=with_user
    )


def _composer(
    viewer: Viewer,
    kind: Kind,
    refs: ContextRefs,
    *,
    status: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    problem: str = "",
) -> Response:
    settings = viewer.caller.state.settings
    with viewer.read() as (session, user):
        context, existing = access.access_start(session, user, kind, refs)
        if existing is not None and status == 200:
            return RedirectResponse(f"/conversations/{existing.id}", status_code=303)
        draft = _draft(session, user, kind, refs, context, settings)
        given = values or {}
        chosen = given.get("channel") or Channel.app.value
        context_vars: dict[str, Any] = {
            "draft": draft,
            "values": given,
            "chosen": chosen,
            "errors": errors or {},
            "problem": problem,
            "channel_labels": CHANNEL_LABELS,
            **frame(session, user, viewer, _section(user, kind)),
        }
        return render("start.html", status, **context_vars)


@router.get("/conversations/new")
def start_page(
    viewer: PageViewer,
    kind: Annotated[Kind, Query()],
    job: QueryRef = None,
    candidate: QueryRef = None,
    application: QueryRef = None,
    partner: QueryRef = None,
    with_user: QueryRef = None,
) -> Response:
    return _composer(viewer, kind, _refs(job, candidate, application, partner, with_user))


@router.post("/conversations/new")
def start_send(
    viewer: FormViewer,
    kind: Annotated[Kind, Form()],
    job: FormRef = None,
    candidate: FormRef = None,
    application: FormRef = None,
    partner: FormRef = None,
    with_user: FormRef = None,
    body: Annotated[str, Form(max_length=100_000)] = "",
    channel: Annotated[str, Form(max_length=10)] = "app",
    subject: Annotated[str, Form(max_length=1_000)] = "",
    idempotency_key: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    refs = _refs(job, candidate, application, partner, with_user)
    state = viewer.caller.state
    values = {"body": body, "subject": subject, "channel": channel, "key": idempotency_key or ""}
    try:
        chosen = Channel(channel)
    except ValueError:
        return _composer(
            viewer, kind, refs, status=422, values=values, errors={"channel": "is not a channel"}
        )
    try:
        with viewer.write() as (session, user):
            conv, _message, _replayed = start_as(
                session,
                user,
                kind,
                refs,
                Outgoing(
                    body=body,
                    channel=chosen,
                    subject=subject.strip() or None,
                    idempotency_key=idempotency_key or None,
                ),
                limiter=state.send_limiter,
                limits=Limits.of(state.settings),
                now=viewer.caller.now,
            )
    except Invalid as exc:
        fields = exc.fields or {}
        known = {k: v for k, v in fields.items() if k in ("body", "subject", "channel")}
        rest = "; ".join(f"{k}: {v}" for k, v in fields.items() if k not in known)
        return _composer(viewer, kind, refs, status=422, values=values, errors=known, problem=rest)
    except (Conflict, RateLimited) as exc:
        if exc.code == "idempotency_key_reused":
            # The form's key went with another message (sent, then Back, edited and sent
            # again): this is a new message, so the page offers a new key rather than the one
            # that can never be sent again.
            values["key"] = ""
        return _composer(
            viewer, kind, refs, status=exc.status, values=values, problem=_sentence(exc)
        )
    return RedirectResponse(f"/conversations/{conv.id}", status_code=303)


def _sentence(exc: AppError) -> str:
    return exc.message[:1].upper() + exc.message[1:]


@router.post("/conversations/start")
def start_form(
    viewer: FormViewer,
    kind: Annotated[Kind, Form()],
    job: FormRef = None,
    candidate: FormRef = None,
    application: FormRef = None,
    partner: FormRef = None,
    with_user: FormRef = None,
    next: Annotated[str | None, Form(max_length=2_000)] = None,
) -> Response:
    """Open the conversation of a kind and context (or reach the one that exists), then go to
    it, or to ``next`` (a path on this site) with ``{id}`` filled in. Kept for compatibility:
    it can leave an empty conversation behind, so our pages use the composer instead."""
    refs = _refs(job, candidate, application, partner, with_user)
    with viewer.write() as (session, user):
        context, existing = access.access_start(session, user, kind, refs)
        conv, _member, _created = do_start_conversation(
            session, actor=user, context=context, existing=existing, now=viewer.caller.now
        )
    target = local_path(next.replace("{id}", str(conv.id))) if next else None
    return RedirectResponse(target or f"/conversations/{conv.id}", status_code=303)
