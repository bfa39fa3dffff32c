"""The line a text gets when its message has files: who sent what, and one sign-in link.

One link per text, whatever the number of files: a link costs about a hundred characters (a
segment's worth with the names around it), so one file's link downloads that file and several
files' link opens the conversation, where they are all shown. The names are shortened and
listed up to three, so the line stays within two segments of its own; it is added after what
the sender wrote, in room the body's limit keeps for it (see ``FILES_ROOM``).
"""

from __future__ import annotations

from collections.abc import Sequence

from jobchat.sms.segments import shorten

# The characters a text's file line (and the blank line before it) may take at most: a
# sender and three names of up to 32 characters each, and a link of up to ~200.
# A body of an SMS message with files is limited to JOBCHAT_MAX_SMS_CHARS minus this, so the
# whole still fits the provider's limit (Twilio's is 1600).
FILES_ROOM = 400

_LISTED = 3
_LONGEST_NAME = 32


def sms_body_limit(max_sms_chars: int, with_files: bool) -> int:
    """The longest body an SMS message may have: JOBCHAT_MAX_SMS_CHARS, less FILES_ROOM when
    it carries files (the text that goes is the body and the file line)."""
    return max(max_sms_chars - FILES_ROOM, 0) if with_files else max_sms_chars


def sms_too_long(max_sms_chars: int, with_files: bool) -> str:
    most = sms_body_limit(max_sms_chars, with_files)
    if with_files:
        return (
            f"an SMS with files may be at most {most} characters (the files' link takes the rest)"
        )
    return f"an SMS may be at most {most} characters"


def files_line(*, sender: str, filenames: Sequence[str], link: str) -> str:
    """ "Tess sent you a file: CV.pdf <link>", or "… 3 files: a.pdf, b.jpg, c.pdf. See them:
    <link>" (the link opening the conversation)."""
    who = shorten(sender, _LONGEST_NAME)
    names = [shorten(name, _LONGEST_NAME) for name in filenames[:_LISTED]]
    if len(filenames) == 1:
        return f"{who} sent you a file: {names[0]} {link}"
    more = len(filenames) - _LISTED
    listed = ", ".join(names) + (f" and {more} more" if more > 0 else "")
    return f"{who} sent you {len(filenames)} files: {listed}. See them: {link}"


def with_files(body: str, line: str) -> str:
    """The text that goes: what the sender wrote, then the file line."""
    return f"{body}\n\n{line}" if body else line
