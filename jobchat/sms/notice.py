"""The notification text: "you have a message", with who sent it, the job and a sign-in link.

Short on purpose (at most two segments): the message itself stays in the app, where the link
signs the candidate straight into it. The sender's name and the job are shortened to fit.
"""

from __future__ import annotations

from jobchat.jobqueue.worker import PermanentFailure
from jobchat.sms.provider import SentSms, SmsProvider, SmsRejected
from jobchat.sms.segments import count_segments, shorten

MAX_SEGMENTS = 2
# Where a name must be cut, it is cut to this many characters at most, then shorter still.
_LONGEST_PART = 60


def notice_text(*, sender: str, job: str | None, link: str, intro: str | None = None) -> str:
    """The text, shortened until it fits in two segments (the link is never cut). The first
    text after an opt-in starts with its intro line (jobchat.sms.intro), within the two."""
    limit = _LONGEST_PART
    first = f"{intro}\n" if intro else ""
    while True:
        about = f" about {shorten(job, limit)}" if job else ""
        body = f"{first}{shorten(sender, limit)} sent you a message{about}. Read and reply: {link}"
        if count_segments(body).segments <= MAX_SEGMENTS or limit <= 8:
            return body
        limit -= 4


async def send_notice(provider: SmsProvider, *, to: str, body: str) -> SentSms:
    """Hand the text to the provider. A refusal (4xx) ends the job; anything else (a 5xx, no
    answer) raises for the worker to retry with backoff."""
    try:
        return await provider.send(to=to, body=body, status_callback=None)
    except SmsRejected as exc:
        raise PermanentFailure(f"{provider.name} refused it: {exc.message}", code=exc.code) from exc
