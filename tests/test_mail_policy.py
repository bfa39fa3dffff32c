"""The email policy of the emails we write and read (jobchat.mail.policy): the default one, each
header's class made once, and every header and part as the default policy gives it."""

from __future__ import annotations

import email
from email.headerregistry import AddressHeader, UnstructuredHeader
from email.message import EmailMessage
from email.policy import SMTP, default

from jobchat.mail.policy import POLICY


def test_each_header_s_class_is_made_once() -> None:
    subjects = [POLICY.header_factory("Subject", text) for text in ("Hello", "Again")]
    assert type(subjects[0]) is type(subjects[1])
    assert isinstance(subjects[0], UnstructuredHeader)
    assert isinstance(POLICY.header_factory("To", "Ann <ann@example.com>"), AddressHeader)
    # One class per kind of header, whatever the names mail arrives with.
    for n in range(50):
        POLICY.header_factory(f"X-Sender-Chosen-{n}", "value")
    assert len({type(POLICY.header_factory(f"X-{n}", "v")) for n in range(50)}) == 1
    assert len(POLICY.header_factory._made) < 20  # type: ignore[attr-defined]
    # What it saves: the standard registry makes a new class each time.
    made = [default.header_factory("Subject", text) for text in ("Hello", "Again")]
    assert type(made[0]) is not type(made[1])


def _email(policy: object) -> EmailMessage:
    message = EmailMessage(policy=policy)  # type: ignore[arg-type]
    message["From"] = "Acme via jobchat <notify@jobchat.example>"
    message["To"] = "Zoë Émile <zoe@example.com>"
    message["Subject"] = "Entretien: « Ingénieure » " + "très long sujet " * 8
    message["Message-ID"] = "<n.12.abc@jobchat.example>"
    message["References"] = "<a@x.example> <b@x.example>"
    message.set_content("Bonjour Zoë,\n\nÀ vendredi ?\n")
    message.add_alternative("<p>Bonjour Zoë,</p><p>À vendredi ?</p>", subtype="html")
    return message


def _shape(raw: bytes) -> list[tuple[str, str]]:
    """Every header and every part's decoded content, as the default policy reads them."""
    parsed = email.message_from_bytes(raw, policy=default)
    assert isinstance(parsed, EmailMessage)
    shape = [(name, str(value)) for name, value in parsed.items() if name != "Content-Type"]
    for part in parsed.walk():
        shape.append(("part", part.get_content_type()))
        if not part.is_multipart():
            shape.append(("content", str(part.get_content())))
    return shape


def test_an_email_written_with_it_reads_as_one_written_with_the_default() -> None:
    ours, theirs = _email(POLICY), _email(default)
    assert _shape(ours.as_bytes(policy=SMTP)) == _shape(theirs.as_bytes(policy=SMTP))
    assert ours["To"].addresses[0].display_name == "Zoë Émile"


def test_mail_read_with_it_reads_as_with_the_default() -> None:
    raw = _email(default).as_bytes(policy=SMTP)
    ours = email.message_from_bytes(raw, policy=POLICY)
    theirs = email.message_from_bytes(raw, policy=default)
    assert [(k, str(v)) for k, v in ours.items()] == [(k, str(v)) for k, v in theirs.items()]
    assert isinstance(ours, EmailMessage) and isinstance(theirs, EmailMessage)
    assert ours.get_body(("plain",)) is not None
    assert str(ours["Subject"]) == str(theirs["Subject"])
