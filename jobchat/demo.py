"""The demo world behind ``jobchat demo``: a fresh database and a believable fortnight in it.

Everything is written through the same actions and access checks the API uses (``do_upsert_*``,
``access_start`` / ``do_start_conversation``, ``access_conversation`` / ``do_send_message``, ...),
one transaction per step as a request would make, so member rows, unread counts, deliveries and
events come out exactly as if real people had done it. A ``FrozenClock`` walks through the last
two weeks and is only ever moved forward, so message and event ids follow time.

Who is who:

- Iress (employer, Melbourne) hires software engineers from abroad through the source partners
  Talent Beyond Boundaries (TBB) and CRS: job chats with one partner and with all of them, a
  candidate case, visa paperwork between TBB and a candidate, and a relocation group chat.
- Northwind Health (employer, Chicago) hires nurses through the agency Bright Talent Recruiting
  (shared and private agency threads) and talks to its own applicants in the app, by email and
  by SMS; one applicant withdraws and her conversation is ended.
- Templates for the composer's picker: "Thanks for applying" and "Interview invitation" shared
  across Iress, and Tom's own "Checking in".
- One message waiting to be sent: Marcus's follow-up to Hannah, scheduled for 08:00 his time on
  the day after the demo is built (on /scheduled, and under the thread for him alone).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from jobchat.access import (
    access_conversation,
    access_message,
    access_start,
    check_delete_for_everyone,
    check_end,
    check_post,
)
from jobchat.clock import FrozenClock, SystemClock
from jobchat.config import Settings
from jobchat.conversations.actions import do_end_conversation, do_mark_read, do_start_conversation
from jobchat.conversations.context import ContextRefs
from jobchat.conversations.models import Kind
from jobchat.conversations.queries import unread_totals
from jobchat.db.engine import Database
from jobchat.db.migrate import upgrade
from jobchat.demo_access import PERSONAS, issue_links
from jobchat.directory.actions import (
    do_upsert_application,
    do_upsert_candidate,
    do_upsert_job,
    do_upsert_organization,
    do_upsert_staff,
)
from jobchat.directory.models import OrgKind, Role, Stage, User, UserKind
from jobchat.directory.queries import user_by_ext
from jobchat.directory.schemas import ApplicationIn, CandidateIn, JobIn, OrganizationIn, StaffIn
from jobchat.messages.actions import Limits, Outgoing, do_delete_message, do_send_message
from jobchat.messages.models import Channel
from jobchat.notifications.email import do_forget_due_notifications
from jobchat.ratelimit import RateLimiter
from jobchat.scheduling.requests import schedule_as
from jobchat.templates.actions import do_create_template
from jobchat.templates.schemas import TemplateIn

# --- the database --------------------------------------------------------------------------------


def fresh_database(url: str) -> Database:
    """An empty database at ``url``, migrated to the newest schema.

    This ERASES whatever is at ``url``: a SQLite file is deleted together with its ``-wal``,
    ``-shm`` and ``-journal`` files; on PostgreSQL the ``public`` schema is dropped with every
    table in it and created again. Point it only at a database meant for the demo.
    """
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        path = make_url(url).database
        if path and path != ":memory:" and not path.startswith("file:"):
            file = Path(path)
            for suffix in ("", "-wal", "-shm", "-journal"):
                file.with_name(file.name + suffix).unlink(missing_ok=True)
            file.parent.mkdir(parents=True, exist_ok=True)
    elif backend != "postgresql":
        raise ValueError(f"the demo runs on SQLite or PostgreSQL, not {backend}")
    db = Database(url)
    if backend == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade(db.engine)
    return db


# --- a small script runner over the actions -----------------------------------------------------


@dataclass(frozen=True)
class Person:
    kind: UserKind
    ext_id: str
    name: str


def _default_limits() -> Limits:
    """The server's default limits (not read from the environment: the demo is always the same)."""
    # The demo texts its candidates too: served, it sends SMS to the log (console) unless a
    # real provider is set up.
    return Limits.of(Settings.model_construct(sms_provider="console"))


@dataclass
class _Script:
    """Runs the demo's steps as the people in it, each step in its own write transaction.

    Times are written ``"D HH:MM"``: day D of the story (day 0 is thirteen days before today,
    day 12 is yesterday) at HH:MM UTC. The clock only moves forward.
    """

    db: Database
    clock: FrozenClock
    day0: datetime
    limits: Limits = field(default_factory=_default_limits)
    applications: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def region(self) -> str:
        return self.limits.default_region

    def at(self, when: str) -> datetime:
        day, hhmm = when.split()
        target = datetime.combine(
            self.day0.date() + timedelta(days=int(day)), time.fromisoformat(hhmm), tzinfo=UTC
        )
        now = self.clock.now()
        if target < now:
            raise ValueError(f"the demo story goes back in time at {when!r}")
        return self.clock.advance(seconds=(target - now).total_seconds())

    def user(self, session: Session, who: Person) -> User:
        user = user_by_ext(session, who.kind, who.ext_id)
        if user is None:
            raise LookupError(f"no demo user {who.ext_id!r}")
        return user

    # The directory, as the ATS integration would send it.

    def organization(self, ext_id: str, name: str, kind: OrgKind) -> str:
        with self.db.write() as session:
            do_upsert_organization(session, ext_id, OrganizationIn(name=name, kind=kind))
        return ext_id

    def staff(
        self,
        ext_id: str,
        name: str,
        *,
        organization: str,
        role: Role,
        email: str,
        timezone: str,
        phone: str | None = None,
    ) -> Person:
        data = StaffIn(
            name=name,
            email=email,
            organization=organization,
            role=role,
            phone=phone,
            timezone=timezone,
        )
        with self.db.write() as session:
            do_upsert_staff(session, ext_id, data, region=self.region, now=self.clock.now())
        return Person(UserKind.staff, ext_id, name)

    def candidate(
        self,
        ext_id: str,
        name: str,
        *,
        email: str,
        timezone: str,
        phone: str | None = None,
        sms_consent: bool = False,
        source_partner: str | None = None,
    ) -> Person:
        data = CandidateIn(
            name=name,
            email=email,
            phone=phone,
            sms_consent=sms_consent,
            source_partner=source_partner,
            timezone=timezone,
        )
        with self.db.write() as session:
            do_upsert_candidate(session, ext_id, data, region=self.region, now=self.clock.now())
        return Person(UserKind.candidate, ext_id, name)

    def job(
        self,
        ext_id: str,
        title: str,
        *,
        employer: str,
        team: list[Person],
        partners: list[str],
    ) -> str:
        data = JobIn(
            title=title,
            employer=employer,
            team=[p.ext_id for p in team],
            partners=partners,
        )
        with self.db.write() as session:
            do_upsert_job(session, ext_id, data, now=self.clock.now())
        return ext_id

    def application(
        self,
        ext_id: str,
        *,
        job: str,
        candidate: Person,
        stage: Stage,
        applied_days_before: int,
        stage_owner: Person | None = None,
        agency_user: Person | None = None,
    ) -> str:
        data = ApplicationIn(
            job=job,
            candidate=candidate.ext_id,
            stage=stage,
            stage_owner=stage_owner.ext_id if stage_owner else None,
            agency_user=agency_user.ext_id if agency_user else None,
            applied_at=self.day0 + timedelta(hours=9) - timedelta(days=applied_days_before),
        )
        with self.db.write() as session:
            do_upsert_application(session, ext_id, data, now=self.clock.now())
        self.applications[ext_id] = (job, candidate.ext_id)
        return ext_id

    def move(self, application: str, stage: Stage, when: str) -> None:
        """The ATS moves an application to a new stage (owner and agency user unchanged)."""
        self.at(when)
        job, candidate = self.applications[application]
        data = ApplicationIn(job=job, candidate=candidate, stage=stage)
        with self.db.write() as session:
            do_upsert_application(session, application, data, now=self.clock.now())

    # What people do in the app.

    def start(
        self,
        who: Person,
        kind: Kind,
        when: str,
        *,
        job: str | None = None,
        candidate: Person | None = None,
        application: str | None = None,
        partner: str | None = None,
        with_user: Person | None = None,
    ) -> int:
        self.at(when)
        refs = ContextRefs(
            job=job,
            candidate=candidate.ext_id if candidate else None,
            application=application,
            partner=partner,
            with_user=with_user.ext_id if with_user else None,
        )
        with self.db.write() as session:
            user = self.user(session, who)
            context, existing = access_start(session, user, kind, refs)
            conv, _member, _created = do_start_conversation(
                session, actor=user, context=context, existing=existing, now=self.clock.now()
            )
            return conv.id

    def say(
        self,
        conversation: int,
        who: Person,
        when: str,
        body: str,
        *,
        channel: Channel = Channel.app,
        subject: str | None = None,
    ) -> int:
        self.at(when)
        with self.db.write() as session:
            user = self.user(session, who)
            conv, member = access_conversation(session, user, conversation)
            check_post(user, conv)
            message, _replayed = do_send_message(
                session,
                actor=user,
                conv=conv,
                member=member,
                out=Outgoing(body=body, channel=channel, subject=subject),
                limits=self.limits,
                now=self.clock.now(),
            )
            return message.id

    def template(
        self,
        who: Person,
        when: str,
        name: str,
        body: str,
        *,
        subject: str | None = None,
        shared: bool = False,
    ) -> int:
        self.at(when)
        data = TemplateIn(name=name, body=body, subject=subject, shared=shared)
        with self.db.write() as session:
            template = do_create_template(
                session,
                self.user(session, who),
                data,
                now=self.clock.now(),
                max_body_chars=self.limits.max_chars,
            )
            return template.id

    def schedule(
        self, conversation: int, who: Person, when: str, body: str, *, send_at: datetime
    ) -> int:
        """``who`` schedules ``body`` for ``send_at``, as the composer's "Send later" does."""
        self.at(when)
        with self.db.write() as session:
            scheduled, _replayed = schedule_as(
                session,
                self.user(session, who),
                conversation,
                Outgoing(body=body),
                send_at=send_at,
                # The demo writes a handful of messages: no send rate or cap is near.
                limiter=RateLimiter(limit=1_000, window_seconds=60.0),
                limits=self.limits,
                max_pending=Settings.model_fields["max_scheduled_per_user"].default,
                now=self.clock.now(),
            )
            return scheduled.id

    def read(self, conversation: int, who: Person, when: str) -> None:
        self.at(when)
        with self.db.write() as session:
            user = self.user(session, who)
            conv, member = access_conversation(session, user, conversation)
            do_mark_read(session, member=member, conv=conv, up_to=None, now=self.clock.now())

    def end(self, conversation: int, who: Person, when: str) -> None:
        self.at(when)
        with self.db.write() as session:
            user = self.user(session, who)
            conv, _member = access_conversation(session, user, conversation)
            check_end(user, conv)
            do_end_conversation(session, actor=user, conv=conv, now=self.clock.now())

    def delete_for_everyone(self, message_id: int, who: Person, when: str) -> None:
        self.at(when)
        with self.db.write() as session:
            user = self.user(session, who)
            message, conv, member = access_message(session, user, message_id)
            check_delete_for_everyone(user, message)
            do_delete_message(
                session,
                actor=user,
                message=message,
                conv=conv,
                member=member,
                for_everyone=True,
                now=self.clock.now(),
            )

    def unread_messages(self, who: Person) -> int:
        with self.db.read() as session:
            return unread_totals(session, self.user(session, who))[1]


# --- the cast ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cast:
    # Iress: Priya is the admin; Tom and Mei-Lin work the jobs; Daniel is on no team.
    priya: Person
    tom: Person
    mei_lin: Person
    daniel: Person
    # Northwind Health: Grace is the admin; Marcus and Aisha recruit.
    grace: Person
    marcus: Person
    aisha: Person
    # Source partners and the agency.
    layla: Person
    claire: Person
    joseph: Person
    beatrice: Person
    rachel: Person
    owen: Person
    # Candidates.
    omar: Person
    rania: Person
    yonas: Person
    ahmed: Person
    farida: Person
    samuel: Person
    maria: Person
    james: Person
    hannah: Person
    lucia: Person
    derek: Person


IRESS, NORTHWIND, TBB, CRS, BRIGHT = "iress", "northwind-health", "tbb", "crs", "bright-talent"
SWE, QA, ICU, PSC = "iress-swe-2", "iress-qa-1", "nw-icu-rn", "nw-psc-lakeview"
APP_OMAR, APP_RANIA, APP_YONAS = "app-swe-omar", "app-swe-rania", "app-swe-yonas"
APP_MARIA, APP_JAMES = "app-icu-maria", "app-icu-james"
APP_HANNAH, APP_LUCIA = "app-psc-hannah", "app-psc-lucia"


def _directory(s: _Script) -> _Cast:
    # fmt: off
    s.organization(IRESS, "Iress", OrgKind.employer)
    s.organization(NORTHWIND, "Northwind Health", OrgKind.employer)
    s.organization(TBB, "Talent Beyond Boundaries", OrgKind.source_partner)
    s.organization(CRS, "CRS", OrgKind.source_partner)
    s.organization(BRIGHT, "Bright Talent Recruiting", OrgKind.agency)

    mel, chi = "Australia/Melbourne", "America/Chicago"
    staff = s.staff
    c = _Cast(
        priya=staff(
            "iress-priya", "Priya Shah", organization=IRESS, role=Role.admin,
            email="priya.shah@iress.example", timezone=mel, phone="+61 491 570 156",
        ),
        tom=staff(
            "iress-tom", "Tom Reilly", organization=IRESS, role=Role.member,
            email="tom.reilly@iress.example", timezone=mel, phone="+61 491 570 110",
        ),
        mei_lin=staff(
            "iress-meilin", "Mei-Lin Chen", organization=IRESS, role=Role.member,
            email="meilin.chen@iress.example", timezone=mel,
        ),
        daniel=staff(
            "iress-daniel", "Daniel Okafor", organization=IRESS, role=Role.member,
            email="daniel.okafor@iress.example", timezone="Australia/Sydney",
        ),
        grace=staff(
            "nw-grace", "Grace Holloway", organization=NORTHWIND, role=Role.admin,
            email="grace.holloway@northwindhealth.example", timezone=chi,
        ),
        marcus=staff(
            "nw-marcus", "Marcus Bell", organization=NORTHWIND, role=Role.member,
            email="marcus.bell@northwindhealth.example", timezone=chi, phone="+1 312 555 0199",
        ),
        aisha=staff(
            "nw-aisha", "Aisha Rahman", organization=NORTHWIND, role=Role.member,
            email="aisha.rahman@northwindhealth.example", timezone=chi,
        ),
        layla=staff(
            "tbb-layla", "Layla Haddad", organization=TBB, role=Role.member,
            email="layla.haddad@tbb.example", timezone="Asia/Amman",
        ),
        claire=staff(
            "tbb-claire", "Claire Martin", organization=TBB, role=Role.admin,
            email="claire.martin@tbb.example", timezone="Europe/London",
        ),
        joseph=staff(
            "crs-joseph", "Joseph Mensah", organization=CRS, role=Role.member,
            email="joseph.mensah@crs.example", timezone="Africa/Nairobi",
        ),
        beatrice=staff(
            "crs-beatrice", "Beatrice Wanjiru", organization=CRS, role=Role.admin,
            email="beatrice.wanjiru@crs.example", timezone="Africa/Nairobi",
        ),
        rachel=staff(
            "bright-rachel", "Rachel Kim", organization=BRIGHT, role=Role.member,
            email="rachel.kim@brighttalent.example", timezone="America/New_York",
            phone="+1 212 555 0182",
        ),
        owen=staff(
            "bright-owen", "Owen Price", organization=BRIGHT, role=Role.member,
            email="owen.price@brighttalent.example", timezone="America/New_York",
        ),
        omar=s.candidate(
            "cand-omar", "Omar Al-Sayed", email="omar.alsayed@example.com",
            phone="+962 79 555 1234", sms_consent=True, timezone="Asia/Amman",
            source_partner=TBB,
        ),
        rania=s.candidate(
            "cand-rania", "Rania Khoury", email="rania.khoury@example.com",
            phone="+961 71 234 567", timezone="Asia/Beirut", source_partner=TBB,
        ),
        yonas=s.candidate(
            "cand-yonas", "Yonas Tesfaye", email="yonas.tesfaye@example.com",
            phone="+254 712 345 678", timezone="Africa/Nairobi", source_partner=CRS,
        ),
        ahmed=s.candidate(
            "cand-ahmed", "Ahmed Yusuf", email="ahmed.yusuf@example.com",
            timezone="Africa/Nairobi", source_partner=CRS,
        ),
        farida=s.candidate(
            "cand-farida", "Farida Noori", email="farida.noori@example.com",
            phone="+962 79 123 4567", timezone="Asia/Amman", source_partner=TBB,
        ),
        samuel=s.candidate(
            "cand-samuel", "Samuel Osei", email="samuel.osei@example.com",
            phone="+233 24 123 4567", timezone="Africa/Accra", source_partner=CRS,
        ),
        maria=s.candidate(
            "cand-maria", "Maria Gonzalez", email="maria.gonzalez@example.com",
            phone="+1 314 555 0123", sms_consent=True, timezone=chi,
        ),
        james=s.candidate(
            "cand-james", "James Whitaker", email="james.whitaker@example.com",
            phone="+1 773 555 0163", timezone=chi,
        ),
        hannah=s.candidate(
            "cand-hannah", "Hannah Lee", email="hannah.lee@example.com",
            phone="+1 312 555 0147", sms_consent=True, timezone=chi,
        ),
        lucia=s.candidate(
            "cand-lucia", "Lucía Fernández", email="lucia.fernandez@example.com",
            phone="+1 847 555 0172", sms_consent=True, timezone=chi,
        ),
        derek=s.candidate(
            "cand-derek", "Derek Thompson", email="derek.thompson@example.com", timezone=chi,
        ),
    )

    s.job(
        SWE,
        "Senior Software Engineer — Melbourne (visa sponsored)",
        employer=IRESS,
        team=[c.tom, c.mei_lin],
        partners=[TBB, CRS],
    )
    s.job(
        QA, "QA Automation Engineer — Melbourne", employer=IRESS, team=[c.tom], partners=[TBB, CRS]
    )
    s.job(
        ICU,
        "Registered Nurse — Intensive Care Unit",
        employer=NORTHWIND,
        team=[c.marcus, c.aisha],
        partners=[BRIGHT],
    )
    # No team: the whole of Northwind Health works this one.
    s.job(PSC, "Patient Services Coordinator — Lakeview Clinic", employer=NORTHWIND, team=[],
          partners=[])

    app = s.application
    app(APP_RANIA, job=SWE, candidate=c.rania, stage=Stage.hired, stage_owner=c.mei_lin,
        applied_days_before=96)
    app(APP_OMAR, job=SWE, candidate=c.omar, stage=Stage.offer, stage_owner=c.mei_lin,
        applied_days_before=41)
    app(APP_YONAS, job=SWE, candidate=c.yonas, stage=Stage.interview, stage_owner=c.mei_lin,
        applied_days_before=23)
    app("app-swe-ahmed", job=SWE, candidate=c.ahmed, stage=Stage.cv_review, stage_owner=c.tom,
        applied_days_before=6)
    app("app-qa-farida", job=QA, candidate=c.farida, stage=Stage.screening, stage_owner=c.tom,
        applied_days_before=12)
    app("app-qa-samuel", job=QA, candidate=c.samuel, stage=Stage.cv_review, stage_owner=c.tom,
        applied_days_before=15)
    app(APP_MARIA, job=ICU, candidate=c.maria, stage=Stage.interview, stage_owner=c.marcus,
        agency_user=c.rachel, applied_days_before=4)
    app(APP_JAMES, job=ICU, candidate=c.james, stage=Stage.offer, stage_owner=c.aisha,
        agency_user=c.owen, applied_days_before=27)
    app(APP_HANNAH, job=PSC, candidate=c.hannah, stage=Stage.applied, stage_owner=c.aisha,
        applied_days_before=2)
    app(APP_LUCIA, job=PSC, candidate=c.lucia, stage=Stage.interview, stage_owner=c.grace,
        applied_days_before=18)
    app("app-psc-derek", job=PSC, candidate=c.derek, stage=Stage.prospect,
        applied_days_before=1)
    # fmt: on
    return c


# --- the story -----------------------------------------------------------------------------------


@dataclass
class _Threads:
    swe_partners: int = 0
    swe_tbb: int = 0
    relocation: int = 0
    farida_tbb: int = 0
    omar_tbb: int = 0
    yonas_case: int = 0
    maria_agency: int = 0
    maria_private: int = 0
    james_private: int = 0
    hannah: int = 0
    lucia: int = 0


def _templates(s: _Script, c: _Cast) -> None:
    """What a recruiter finds in the composer's picker: two templates shared across Iress and
    one of Tom's own. Northwind has none: the browser tests' fresh recruiters there start with
    an empty picker."""
    # fmt: off
    s.template(c.priya, "0 02:00", "Thanks for applying",
               "Hi {{candidate.first_name | there}}, thank you for applying for "
               "{{job.title | the role}} at {{employer.name | Iress}}. We read every application "
               "and will reply here within a week about next steps.\n\n"
               "{{sender.first_name}}, {{sender.organization}}",
               subject="Your application to {{employer.name | Iress}}", shared=True)
    s.template(c.mei_lin, "0 02:10", "Interview invitation",
               "Hi {{candidate.first_name | there}}, thank you for applying for {{job.title}}: "
               "the hiring team would like to meet you! The interview is a 60-minute video "
               "call: half an hour about your experience, then half an hour of pair "
               "programming in the language you prefer. Could you reply with two or three "
               "times next week that suit you (in your own time zone is fine)?\n\n"
               "Best,\n{{sender.first_name}}",
               subject="Interview for {{job.title}}", shared=True)
    s.template(c.tom, "0 02:20", "Checking in",
               "Hi {{candidate.first_name | there}}, just checking in: do you have any "
               "questions about {{job.title | the role}} or the relocation package? Happy to "
               "jump on a call this week.\n\nCheers,\n{{sender.first_name}}")
    # fmt: on


def _first_week(s: _Script, c: _Cast, t: _Threads) -> None:
    # fmt: off
    # Day 0: Iress opens a second cohort to all its source partners, then talks to TBB alone.
    t.swe_partners = s.start(c.priya, Kind.job_partners, "0 06:10", job=SWE)
    s.say(t.swe_partners, c.priya, "0 06:10",
          "Hi TBB and CRS teams — we've opened three more Senior Software Engineer seats in "
          "Melbourne for the second cohort. Same package as last round: 482 visa sponsorship, "
          "an AUD 8,000 relocation allowance and four weeks of temporary accommodation. "
          "Shortlists by the end of next week would be ideal.")
    s.say(t.swe_partners, c.layla, "0 07:25",
          "Thanks Priya, great news. We have two engineers in Amman who passed the pre-screening "
          "coding exercise last month. I'll put their profiles forward by Thursday.")
    s.say(t.swe_partners, c.joseph, "0 09:02",
          "Thank you — CRS will put forward Yonas Tesfaye and Ahmed Yusuf from Kakuma. Both "
          "have their IELTS results (7.5 and 7.0) and full-stack Python experience.")
    t.swe_tbb = s.start(c.tom, Kind.job_partner, "0 22:40", job=SWE, partner=TBB)
    s.say(t.swe_tbb, c.tom, "0 22:40",
          "Morning Layla! Following Priya's note: could you share Omar's updated CV with his "
          "latest Django project? The hiring manager wants to see it before we finalise the "
          "offer paperwork.")

    # Day 1: TBB answers, and helps Farida with her documents.
    s.say(t.swe_tbb, c.layla, "1 06:05",
          "Hi Tom, it's on his profile now. He's also happy to jump on a short call about his "
          "notice period — he needs to give his current employer four weeks.")
    t.farida_tbb = s.start(c.layla, Kind.candidate_partner, "1 06:40", candidate=c.farida)
    s.say(t.farida_tbb, c.layla, "1 06:40",
          "Hi Farida, it's Layla from TBB. Good news: Iress has moved your QA Automation "
          "Engineer application to screening. Could you upload a scan of your university "
          "degree and its certified English translation?")
    s.say(t.farida_tbb, c.farida, "1 11:15",
          "Hello Layla, thank you so much! I have the degree, but the translation is still with "
          "the certified translator. It should be ready on Sunday.")
    s.say(t.farida_tbb, c.layla, "1 11:32",
          "That works — upload both together when you have them. Do you still have your IELTS "
          "results letter? Iress will ask for it before the interview.")
    s.say(t.farida_tbb, c.farida, "1 15:03", "Yes, I have it. I'll upload it tonight.")

    # Day 2: Iress schedules Yonas's interview with him and CRS; Northwind meets the agency.
    t.yonas_case = s.start(c.mei_lin, Kind.case, "2 05:30", application=APP_YONAS)
    s.say(t.yonas_case, c.mei_lin, "2 05:30",
          "Hi Yonas and Joseph — Mei-Lin here, I coordinate interviews for the Senior Software "
          "Engineer role at Iress. We'd like to invite Yonas to a 60-minute technical interview "
          "over video. Would Tuesday, Wednesday or Thursday next week at 10:00 Nairobi time "
          "work?")
    s.say(t.yonas_case, c.joseph, "2 07:12",
          "Thanks Mei-Lin. Yonas will join from our Kakuma office, where the connection is "
          "best in the mornings, so 10:00 is ideal. I'll book the room for whichever day you "
          "choose.")
    s.say(t.yonas_case, c.yonas, "2 08:40",
          "Thank you for the invitation! Wednesday at 10:00 works well for me.")
    t.maria_agency = s.start(c.marcus, Kind.agency, "2 15:20", application=APP_MARIA)
    s.say(t.maria_agency, c.marcus, "2 15:20",
          "Hi Rachel, thanks for submitting Maria Gonzalez for the ICU RN role — her CVICU "
          "experience looks strong. Can you confirm her Illinois RN license is active, and "
          "whether she'd need relocation help to move up from St. Louis?")
    s.say(t.maria_agency, c.rachel, "2 16:45",
          "Hi Marcus! Yes, her Illinois license is active through 2027 and she holds a compact "
          "license too. She'd value relocation support over a sign-on bonus. She can interview "
          "Tuesday or Thursday afternoons.")
    s.say(t.maria_agency, c.marcus, "2 17:10",
          "Perfect. I'll put her on the calendar with our ICU nurse manager, Dr. Patel, for "
          "Thursday at 2pm Central.")
    s.say(t.yonas_case, c.mei_lin, "2 22:10",
          "Dear Yonas,\n\nThis confirms your technical interview for the Senior Software "
          "Engineer role on Wednesday at 10:00 EAT (17:00 in Melbourne) with Tom Reilly and "
          "Sarah Nguyen from our platform team. You'll receive a Microsoft Teams link the day "
          "before. The session includes a 30-minute pairing exercise in Python; no preparation "
          "is needed.\n\nKind regards,\nMei-Lin Chen\nTalent Acquisition, Iress",
          channel=Channel.email,
          subject="Interview confirmation — Senior Software Engineer, Iress")

    # Day 3: Omar accepts his offer; TBB walks him through the visa paperwork.
    s.move(APP_OMAR, Stage.offer_accepted, "3 04:00")
    t.omar_tbb = s.start(c.layla, Kind.candidate_partner, "3 06:30", candidate=c.omar)
    s.say(t.omar_tbb, c.layla, "3 06:30",
          "Congratulations on accepting the Iress offer, Omar! Next up is the visa. I've put "
          "the subclass 482 checklist in your documents: passport bio page, police clearance, "
          "the ACS skills assessment and your signed employment contract.")
    s.say(t.omar_tbb, c.omar, "3 08:10",
          "Thank you Layla! I have the passport and the contract. For the police clearance, do "
          "I also need one from Syria? I lived in Aleppo until 2016.")
    s.say(t.omar_tbb, c.layla, "3 08:55",
          "Good question — yes. Home Affairs wants a police certificate from every country "
          "you've lived in for 12 months or more in the last 10 years. TBB's legal partner can "
          "request the Syrian one for you; I'll send the authorisation form now.")
    s.say(t.omar_tbb, c.omar, "3 13:20",
          "Signed the form and uploaded it. I submitted the ACS skills assessment as "
          "well.")
    s.read(t.maria_agency, c.grace, "3 14:30")

    # Day 4: Yonas confirms; Iress closes Samuel's QA application and opens relocation planning.
    s.read(t.yonas_case, c.yonas, "4 04:50")
    s.say(t.yonas_case, c.yonas, "4 05:00",
          "Thank you Mei-Lin, I received the email. Confirmed for Wednesday.")
    s.move("app-qa-samuel", Stage.rejected, "4 06:00")
    t.relocation = s.start(c.mei_lin, Kind.job_relocation, "4 22:15", job=SWE)
    s.say(t.relocation, c.mei_lin, "4 22:15",
          "Welcome to the relocation chat for the Senior Software Engineer cohort! Rania, Omar "
          "— this is where we'll sort out flights, accommodation and your first weeks in "
          "Melbourne. Layla (TBB) and Joseph (CRS) are here too.")

    # Day 5: flights and visas; Northwind's recruiter reaches a new applicant.
    s.say(t.relocation, c.rania, "5 05:40",
          "Thank you Mei-Lin! My visa was granted last week. Is it OK if I book the Qatar "
          "Airways flight from Beirut via Doha? It lands in Melbourne at 06:00 local "
          "time.")
    s.say(t.relocation, c.mei_lin, "5 06:15",
          "Yes, that's fine — send the booking to travel@iress.example and it'll be reimbursed "
          "from your relocation allowance. We'll arrange an airport pickup for you.")
    s.say(t.relocation, c.omar, "5 07:00",
          "Hello everyone! My visa application goes in as soon as the police certificates "
          "arrive. Layla thinks that takes four to six weeks.")
    s.say(t.relocation, c.layla, "5 07:30",
          "That's right. I'll post updates here as the documents come in.")
    t.hannah = s.start(c.aisha, Kind.application, "5 15:30", application=APP_HANNAH)
    s.say(t.hannah, c.aisha, "5 15:30",
          "Hi Hannah, this is Aisha Rahman, a recruiter at Northwind Health. Thanks for applying "
          "for the Patient Services Coordinator role at our Lakeview Clinic! Do you have 15 "
          "minutes next week for a quick phone screen?")
    s.say(t.hannah, c.hannah, "5 18:02",
          "Hi Aisha, thanks for reaching out! Yes — I'm free Thursday after 3pm or any time "
          "Friday morning.")
    s.say(t.hannah, c.aisha, "5 18:20",
          "Let's do Friday at 9:30am Central. I'll call the number ending 0147.")
    s.read(t.hannah, c.hannah, "5 18:31")

    # Day 6: the agency user takes a sensitive point to the stage owner privately.
    t.maria_private = s.start(c.rachel, Kind.agency_private, "6 14:50",
                              application=APP_MARIA, with_user=c.marcus)
    s.say(t.maria_private, c.rachel, "6 14:50",
          "Marcus, a quick one off the main thread: Maria has a competing offer from a St. Louis "
          "hospital at $46/hr. She prefers Northwind for the ICU team and the tuition support, "
          "but she'd need you to come close. Anything you can do?")
    s.say(t.maria_private, c.marcus, "6 16:30",
          "Thanks for the heads-up. Our ICU range tops out at $44 for her years of experience, "
          "but I can ask about the $5,000 relocation package and the night differential. Let me "
          "talk to Grace.")
    s.read(t.maria_private, c.rachel, "6 17:02")
    # fmt: on


def _second_week(s: _Script, c: _Cast, t: _Threads) -> None:
    # fmt: off
    # Day 7: Lucía withdraws; Grace thanks her and ends the conversation.
    t.lucia = s.start(c.grace, Kind.application, "7 15:05", application=APP_LUCIA)
    s.say(t.lucia, c.grace, "7 15:05",
          "Hi Lucía, it's Grace Holloway from Northwind Health. The Lakeview team enjoyed your "
          "video interview and would like to meet you in person next week. Would Tuesday or "
          "Wednesday morning suit you?")
    s.say(t.lucia, c.lucia, "7 19:40",
          "Thank you so much, Grace. I'm sorry to say I've accepted an offer from a clinic "
          "closer to home, so I'd like to withdraw my application. Everyone I met was "
          "lovely.")
    s.move(APP_LUCIA, Stage.withdrawn, "7 20:05")
    s.say(t.lucia, c.grace, "7 20:10",
          "Congratulations, Lucía, and thank you for letting us know. I've withdrawn your "
          "application — we'd be glad to hear from you again in the future.")
    s.read(t.lucia, c.lucia, "7 20:11")
    s.end(t.lucia, c.grace, "7 20:12")

    # Day 8: Maria's interview went well; Aisha and Owen settle James's offer privately.
    s.say(t.maria_agency, c.marcus, "8 14:05",
          "Maria's interview with Dr. Patel went really well — the team wants to move to "
          "references. Could you send two clinical references, ideally one from a charge "
          "nurse?")
    t.james_private = s.start(c.aisha, Kind.agency_private, "8 15:10", application=APP_JAMES)
    s.say(t.james_private, c.aisha, "8 15:10",
          "Hi Owen, between us before I send it formally: James's offer is approved at "
          "$43.50/hr with the $5,000 relocation package. Is there anything that would make him "
          "hesitate? I'd rather not go back and forth.")
    s.say(t.maria_agency, c.rachel, "8 15:40",
          "Great news! I'll have both references to you by end of day tomorrow.")
    s.say(t.james_private, c.owen, "8 16:40",
          "Thanks Aisha. The only sticking point is the start date: he owes his current "
          "employer four weeks' notice and has a family trip booked. Could he start on the 2nd "
          "of next month instead?")
    s.say(t.james_private, c.aisha, "8 17:05",
          "That's fine — I'll put the later start date in the letter.")
    s.say(t.james_private, c.owen, "8 17:30",
          "Perfect, he'll be thrilled. I'll tell him to watch for the letter.")
    s.read(t.james_private, c.aisha, "8 18:00")
    s.say(t.swe_tbb, c.tom, "8 22:30",
          "Layla, the hiring manager loved Omar's project. Do you have anyone else with similar "
          "backend experience for the remaining seats?")

    # Day 9: after Yonas's interview.
    s.say(t.yonas_case, c.mei_lin, "9 00:15",
          "Thank you for your time yesterday, Yonas — the panel really enjoyed the pairing "
          "session. We'll be in touch within a week about next steps. Joseph, thanks for "
          "hosting.")
    s.read(t.yonas_case, c.priya, "9 01:30")
    s.say(t.yonas_case, c.yonas, "9 06:10",
          "Thank you, I enjoyed meeting the team very much. Joseph, thank you for the room and "
          "the laptop!")
    s.say(t.swe_tbb, c.layla, "9 06:20",
          "Yes! I'll send two more profiles this week. One is a data engineer in Amman with five "
          "years of Python and Airflow.")

    # Day 10: Omar's visa is lodged; Marcus posts in the wrong thread and takes it back.
    s.say(t.relocation, c.omar, "10 05:00",
          "Update: the Jordanian police certificate arrived today and TBB's partner received "
          "the Syrian one. My visa application was lodged this morning!")
    s.say(t.relocation, c.layla, "10 06:10",
          "Fantastic news, Omar! Current processing times for 482 visas are around three to "
          "five weeks.")
    s.say(t.relocation, c.priya, "10 06:40",
          "Great progress, Omar. We'll keep your start date flexible — tell us as soon as the "
          "grant comes through.")
    s.read(t.relocation, c.omar, "10 07:01")
    s.say(t.omar_tbb, c.omar, "10 07:05",
          "Layla, do I need to do anything else now that the application is lodged?")
    s.say(t.omar_tbb, c.layla, "10 07:30",
          "Home Affairs will probably ask for a health examination. When your HAP ID letter "
          "arrives, book it at the panel clinic in Amman straight away — appointments fill up "
          "fast.")
    s.read(t.relocation, c.joseph, "10 07:45")
    s.read(t.relocation, c.rania, "10 08:00")
    wrong = s.say(t.maria_agency, c.marcus, "10 15:05",
                  "Owen — James's offer letter went out this morning with the later start "
                  "date.")
    s.delete_for_everyone(wrong, c.marcus, "10 15:07")
    s.say(t.maria_agency, c.marcus, "10 15:08",
          "Sorry Rachel, please ignore that — wrong thread. Both of Maria's references came "
          "back glowing, and we're putting her offer together now.")
    s.say(t.maria_agency, c.rachel, "10 17:20",
          "Wonderful, thank you Marcus! She'll be so happy.")

    # Day 11: a CRS update for everyone, and Farida's documents are in.
    s.say(t.swe_partners, c.joseph, "11 08:30",
          "Update from CRS: Ahmed's CV is with your team for review and Yonas has had his "
          "interview. We also have a cloud engineer finishing her AWS certification — should "
          "we put her forward for this cohort or wait for the next one?")
    s.say(t.farida_tbb, c.farida, "11 10:05",
          "Hi Layla, I've uploaded the degree, the translation and the IELTS letter. Is there "
          "anything else Iress needs before the interview?")

    # Day 12 (yesterday): housing, a reminder by SMS, and good news for the agency.
    s.say(t.relocation, c.mei_lin, "12 00:20",
          "Rania, your serviced apartment in Southbank is confirmed for four weeks from your "
          "arrival — the keys will be with the building concierge. Omar, once your visa is "
          "granted we'll book the same building for you.")
    s.read(t.relocation, c.tom, "12 01:00")
    s.say(t.relocation, c.rania, "12 05:45",
          "That's perfect, thank you! Could someone help me open a bank account and get a "
          "myki card in my first week?")
    s.say(t.hannah, c.aisha, "12 15:45",
          "Hi Hannah, it's Aisha from Northwind Health — a reminder of our phone screen "
          "tomorrow at 9:30am Central. Reply here if you need to reschedule.",
          channel=Channel.sms)
    s.say(t.maria_private, c.marcus, "12 16:10",
          "Good news: Grace approved $44/hr plus the full $5,000 relocation package for Maria. "
          "I'll share it in the main thread once the offer letter is ready, but wanted you to "
          "hear it first.")
    # fmt: on


def _scheduled(s: _Script, c: _Cast, t: _Threads, built: datetime) -> None:
    """Marcus's follow-up to Hannah, waiting for 08:00 his time on the day after the demo is
    built (8 to 32 hours on), so it is still waiting when the demo is served. It says nothing of
    her phone screen: for a demo built on a Chicago evening, it goes out before the call."""
    with s.db.read() as session:
        zone = ZoneInfo(s.user(session, c.marcus).timezone)
    day = built.astimezone(zone).date() + timedelta(days=1)
    send_at = datetime.combine(day, time(8), tzinfo=zone)
    # fmt: off
    s.schedule(t.hannah, c.marcus, "12 16:20",
               "Hi Hannah, Marcus Bell here: I work with Aisha on hiring for the Lakeview Clinic. "
               "If any questions about the Patient Services Coordinator role or the clinic come "
               "up, reply here and one of us will get back to you the same day.",
               send_at=send_at)
    # fmt: on


# --- putting it together -------------------------------------------------------------------------


def build_demo(db: Database, *, public_url: str) -> list[tuple[str, str]]:
    """Fill a fresh database with the demo world; returns (persona, sign-in link) pairs.

    The story runs over the last two weeks on a frozen clock (UTC), ending yesterday. Every
    persona is left with unread messages. Each link signs in once and is valid for 24 hours.
    """
    now = SystemClock().now()
    day0 = datetime.combine(now.date() - timedelta(days=13), time(), tzinfo=UTC)
    script = _Script(db=db, clock=FrozenClock(now - timedelta(days=14)), day0=day0)
    cast = _directory(script)
    threads = _Threads()
    _templates(script, cast)
    _first_week(script, cast, threads)
    _second_week(script, cast, threads)
    _scheduled(script, cast, threads, built=now)
    if script.clock.now() > now:
        raise RuntimeError("the demo story runs into the future")
    with db.write() as session:
        # The story is history: nobody is emailed about its unread messages when it is served.
        do_forget_due_notifications(session)

    for persona in PERSONAS:
        who = Person(persona.kind, persona.ext_id, persona.label)
        if script.unread_messages(who) == 0:
            raise RuntimeError(f"demo persona {persona.label} has nothing unread")
    return issue_links(db, public_url=public_url, now=SystemClock().now())
