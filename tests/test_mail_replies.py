"""reply_text: the new text of replies written in real mail clients, without the quoted history
or the signature. The fixtures in fixtures/mail are raw messages as the clients write them."""

# ruff: noqa: RUF001 (the fixtures' languages have Cyrillic letters and typographic dashes)
from __future__ import annotations

import email
import re
import time
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest

from jobchat.mail.replies import reply_text

FIXTURES = Path(__file__).parent / "fixtures" / "mail"
JANE = "r-12-34-k9f2x7q1@reply.example.com"


def load(name: str) -> EmailMessage:
    return parse((FIXTURES / name).read_bytes())


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(message, EmailMessage)
    return message


def html_part(message: EmailMessage) -> EmailMessage | None:
    """The text/html alternative of a message that also has text/plain, as a message itself."""
    parts = [p for p in message.walk() if isinstance(p, EmailMessage)]
    if not any(p.get_content_type() == "text/plain" for p in parts):
        return None
    return next((p for p in parts if p.get_content_type() == "text/html"), None)


def decoded_body(message: EmailMessage) -> str:
    """Every text part of the message, decoded: what reply_text starts from."""
    texts = []
    for part in message.walk():
        if part.get_content_maintype() == "text" and not part.is_attachment():
            assert isinstance(part, EmailMessage)
            texts.append(str(part.get_content()))
    return "\n".join(texts)


ASK = "Could you come in on Tuesday at 10 for an interview?"

# (fixture, expected text, a sentence only in the quoted history). A sign-off ("Thanks,\nAna")
# stays: it is the person's text, and cutting at "Thanks," would lose what follows it.
CLIENTS = [
    pytest.param(
        "gmail_web.eml",
        "Hi Jane,\n\nYes, Tuesday at 10 works for me. I\u2019ll bring a printed copy of my "
        "portfolio and the two references you asked for last week.\n\nThanks,\nAna",
        ASK,
        id="gmail-web",
    ),
    pytest.param("gmail_android.eml", "Sure, see you then!", ASK, id="gmail-android"),
    pytest.param(
        "outlook_desktop.eml",
        "Hi Jane,\n\nYes, Tuesday at 10 works for me \u2013 I\u2019ll be there ten minutes early."
        "\n\nBest regards,\nAna Silva",
        ASK,
        id="outlook-desktop",
    ),
    pytest.param(
        "outlook_web.eml",
        "Yes, Tuesday works. Should I bring anything?\n\nAna",
        ASK,
        id="outlook-web",
    ),
    pytest.param("outlook_ios.eml", "Yes, I can do Tuesday at 10.", ASK, id="outlook-ios"),
    pytest.param(
        "apple_mail.eml",
        "Hi Jane,\n\nTuesday at 10 is perfect. See you then.\n\nAna",
        ASK,
        id="apple-mail",
    ),
    pytest.param("iphone_mail.eml", "Perfect, see you Tuesday!", ASK, id="iphone-mail"),
    pytest.param(
        "thunderbird.eml",
        "Hi Jane,\n\nTuesday at 10 works for me. I will bring the references you asked for and "
        "a copy of my portfolio.\n\nBest,\nAna",
        ASK,
        id="thunderbird-flowed-signature",
    ),
    pytest.param("samsung_email.eml", "Yes, Tuesday is fine \U0001f44d", ASK, id="samsung-base64"),
    pytest.param("yahoo.eml", "Yes, Tuesday at 10 works.\nAna", ASK, id="yahoo"),
    pytest.param(
        "html_only.eml",
        "Hello Jane,\n\nTuesday at 10 works \u2013 Q&A afterwards is fine too. I'll bring:\n\n"
        "- my portfolio\n- two references\n\nAna\n\nPS: Wednesday would work too.",
        ASK,
        id="html-only",
    ),
    pytest.param(
        "outlook_german.eml",
        "Hallo Frau Recruiter,\n\nDienstag um 10 Uhr passt mir gut. Ich bringe meine Zeugnisse "
        "mit.\n\nMit freundlichen Grüßen\nAna Silva",
        "könnten Sie am Dienstag um 10 Uhr zu einem Gespräch kommen?",
        id="outlook-german-latin1",
    ),
    pytest.param(
        "gmail_french.eml",
        "Bonjour Jane,\n\nMardi à 10 h me convient parfaitement.\n\nCordialement,\nAna",
        "Pourriez-vous venir mardi à 10 h pour un entretien ?",
        id="gmail-french",
    ),
    pytest.param(
        "japanese.eml",
        "Jane様\n\nお世話になっております。\n火曜日の10時で問題ありません。\n"
        "よろしくお願いいたします。\n\nアナ",
        "火曜日の10時に面接にお越しいただけますか？",
        id="japanese-iso-2022-jp",
    ),
    pytest.param(
        "russian_koi8r.eml",
        "Здравствуйте, Джейн!\n\nВторник в 10:00 мне подходит.\n\nС уважением,\nАна",
        "Сможете прийти на собеседование во вторник в 10:00?",
        id="russian-koi8-r",
    ),
    pytest.param(
        "spanish_latin1.eml",
        "Hola Jane:\n\nSí, el martes a las 10 me viene bien. ¿Llevo también el currículum "
        "impreso?\n\nUn saludo,\nAna",
        "¿Podrías venir el martes a las 10 para una entrevista?",
        id="spanish-latin1-qp",
    ),
    pytest.param(
        "gmail_attachment.eml",
        "Here is my updated CV, and a note on my availability.\n\nAna",
        "could you send me your latest CV?",
        id="gmail-with-attachments",
    ),
    pytest.param(
        "mutt_bottom_post.eml",
        "Tuesday at 10 is fine. Is there parking nearby?\n\nAna",
        ASK,
        id="mutt-bottom-posted-signature",
    ),
    pytest.param("only_quote.eml", "", ASK, id="only-quote"),
]

# What no reply may keep: quote headers, quote marks, markup, app lines, signatures.
LEFTOVERS = [
    "wrote:",
    "a écrit",
    "escribió",
    "пишет",
    ">",
    "<div",
    "<br",
    "&nbsp;",
    "&amp;",
    "\xa0",
    "\r",
    "Sent from",
    "Get Outlook",
    "From:",
    "Von:",
    "Original",
    "Ursprüngliche",
    "-- ",
    "Jane Recruiter",
    JANE,
    "alert(",
    "font-family",
]


@pytest.mark.parametrize(("name", "expected", "quoted"), CLIENTS)
def test_the_new_text_of_a_reply(name: str, expected: str, quoted: str) -> None:
    assert reply_text(load(name)) == expected


@pytest.mark.parametrize(("name", "expected", "quoted"), CLIENTS)
def test_the_fixture_has_a_quote_to_remove(name: str, expected: str, quoted: str) -> None:
    body = decoded_body(load(name))
    assert quoted in body
    assert body.strip() != expected


# The clients that send text/html beside text/plain: the HTML alone must give the same text.
WITH_HTML = [case for case in CLIENTS if html_part(load(str(case.values[0]))) is not None]


@pytest.mark.parametrize(("name", "expected", "quoted"), WITH_HTML)
def test_the_html_alternative_gives_the_same_text(name: str, expected: str, quoted: str) -> None:
    html = html_part(load(name))
    assert html is not None
    assert reply_text(html) == expected


@pytest.mark.parametrize(("name", "expected", "quoted"), CLIENTS)
def test_nothing_of_the_quote_or_markup_is_left(name: str, expected: str, quoted: str) -> None:
    message = load(name)
    html = html_part(message)
    for text in (reply_text(message), reply_text(html) if html else ""):
        assert quoted not in text
        for leftover in LEFTOVERS:
            assert leftover not in text, (leftover, text)
        assert text == text.strip()
        assert "\n\n\n" not in text


# -- HTML quote containers ---------------------------------------------------------------------
# Each with an attribution in Portuguese or Turkish, which mail-parser-reply has no words for:
# only the container tells the quote apart.


def html(body: str) -> EmailMessage:
    return parse(f"Content-Type: text/html; charset=utf-8\n\n{body}".encode())


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            '<div dir="ltr">Sim, terça às 10.</div><br><div class="gmail_quote">'
            '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex">'
            '<div dir="ltr">Olá Ana, pode vir terça?</div></blockquote></div>',
            id="gmail_quote",
        ),
        pytest.param(
            '<div>Sim, terça às 10.</div><div><br><blockquote type="cite"><div>Em 5 de jan. '
            "de 2026, às 09:00, Jane &lt;j@x.example&gt; escreveu:</div><br>"
            "<div>Olá Ana, pode vir terça?</div></blockquote></div>",
            id="apple-blockquote-cite",
        ),
        pytest.param(
            '<p>Sim, terça às 10.</p><div class="moz-cite-prefix">Em 05/01/2026 09:00, Jane '
            'escreveu:<br></div><blockquote type="cite" cite="mid:x@y"><p>Olá Ana, pode vir '
            "terça?</p></blockquote>",
            id="thunderbird-moz-cite-prefix",
        ),
        pytest.param(
            '<div class="ydp1a2b3cyahoo-style-wrap"><div>Sim, terça às 10.</div></div>'
            '<div id="ydp9f8e7dyahoo_quoted_3141" class="ydp9f8e7dyahoo_quoted"><div>Em '
            "segunda-feira, 5 de janeiro de 2026, 09:00:00 GMT, Jane escreveu:</div><div><div "
            'dir="ltr">Olá Ana, pode vir terça?</div></div></div>',
            id="yahoo_quoted",
        ),
        pytest.param(
            "<p>Sim, terça às 10.</p><p>Em seg., 5 de jan. de 2026 às 09:00, Jane "
            "&lt;j@x.example&gt; escreveu:</p><blockquote><p>Olá Ana, pode vir terça?</p>"
            "</blockquote>",
            id="blockquote-after-attribution",
        ),
        pytest.param(
            '<div>Sim, terça às 10.</div><div id="appendonsend"></div><hr tabindex="-1">'
            '<div id="divRplyFwdMsg" dir="ltr"><b>Kimden:</b> Jane<br><b>Gönderildi:</b> 5 '
            "Ocak 2026 Pazartesi 09:00<br><b>Kime:</b> Ana<br><b>Konu:</b> Mülakat</div>"
            "<div>Olá Ana, pode vir terça?</div>",
            id="outlook-web-divRplyFwdMsg",
        ),
        pytest.param(
            '<div dir="ltr">Sim, terça às 10.</div><div id="mail-editor-reference-message-'
            'container"><div><b>Kimden:</b> Jane<br><b>Kime:</b> Ana</div>'
            "<div>Olá Ana, pode vir terça?</div></div>",
            id="outlook-mobile-reference-container",
        ),
    ],
)
def test_a_quote_container_goes(body: str) -> None:
    assert reply_text(html(body)) == "Sim, terça às 10."


def test_an_indented_blockquote_without_attribution_stays() -> None:
    body = (
        '<div>My answers:</div><blockquote style="margin:0 0 0 40px;border:none;padding:0px">'
        "<div>Yes, I have a work permit.</div></blockquote><div>Ana</div>"
    )
    assert reply_text(html(body)) == "My answers:\nYes, I have a work permit.\nAna"


def test_html_is_turned_into_lines() -> None:
    body = (
        "<html><head><title>t</title><style>p{}</style></head><body>"
        "<p class=MsoNormal>Line one<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p>"
        "<p class=MsoNormal>Line   two\nwrapped &amp; <b>bold</b>&nbsp;&lt;3</p>"
        "<p>Para</p><p>Para</p><table><tr><td>a</td><td>b</td></tr></table>"
        "<pre>  kept\n  spaces</pre><script>x()</script></body></html>"
    )
    assert reply_text(html(body)) == (
        "Line one\n\nLine two wrapped & bold <3\n\nPara\n\nPara\n\na b\nkept\nspaces"
    )


# -- plain text details ----------------------------------------------------------------------------


def plain(body: str) -> EmailMessage:
    head = (
        f"From: Ana <ana@example.org>\nTo: {JANE}\nSubject: Re: Interview\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
    )
    return parse(head.encode() + body.encode())


def text_of(body: str) -> str:
    return reply_text(plain(body))


def test_a_sign_off_and_what_follows_it_stay() -> None:
    # mail-parser-reply's signature expression would cut at "Thanks," and lose both questions.
    body = "Hi Jane,\nThanks, Tuesday works.\nCould you send the address?\n\nBest,\nAna"
    assert text_of(body) == body


def test_a_line_starting_with_a_polish_header_label_stays() -> None:
    # mail-parser-reply's Polish header needs one "Data:"/"Do:"/"Od:" line only.
    body = "My notes:\nData: 12 slides prepared\nand my ID.\n\nAna"
    assert text_of(body) == body


def test_a_polish_outlook_header_is_still_cut() -> None:
    body = f"Tak, wtorek pasuje.\n\nOd: Jane <{JANE}>\nWysłano: 5 stycznia 2026\nDo: Ana\n\n{ASK}"
    assert text_of(body) == "Tak, wtorek pasuje."


def test_a_list_written_with_hyphens_stays() -> None:
    assert (
        text_of("I can do:\n- Monday\n- Tuesday\n\nAna") == "I can do:\n- Monday\n- Tuesday\n\nAna"
    )


def test_the_signature_after_the_delimiter_goes() -> None:
    assert text_of("Works for me.\n\n-- \nAna Silva\n+44 20 7946 0000\n") == "Works for me."


@pytest.mark.parametrize(
    "app_line",
    [
        "Sent from my iPhone",
        "Sent from my Galaxy",
        "Sent from my Samsung Galaxy smartphone.",
        "Sent from Mail<https://go.microsoft.com/fwlink/?LinkId=550986> for Windows",
        "Sent from Mail for Windows",
        "Sent from Yahoo Mail for iPhone",
        "Sent from Yahoo Mail on Android",
        "Get Outlook for Android<https://aka.ms/AAb9ysg>",
        "Get Outlook for iOS",
        "Von meinem iPhone gesendet",
        "Envoyé de mon iPhone",
        "Enviado desde mi iPhone",
        "Verstuurd vanaf mijn iPhone",
    ],
)
def test_the_line_a_mail_app_adds_goes(app_line: str) -> None:
    assert text_of(f"Yes, that works.\n\n{app_line}\n") == "Yes, that works."


def test_a_sentence_that_starts_like_an_app_line_stays() -> None:
    body = "Sent from my work account, sorry. Tuesday works!\nAna"
    assert text_of(body) == body


@pytest.mark.parametrize(
    "header",
    [
        "-----Original Message-----\nFrom: Jane Recruiter [mailto:{jane}]\nSent: Monday, "
        "January 5, 2026 9:00 AM\nTo: Ana\nSubject: Interview",
        "________________________________\nFrom: Jane Recruiter <{jane}>\nSent: Monday, "
        "January 5, 2026 9:00 AM\nTo: Ana\nSubject: Interview",
        "Von: Jane Recruiter <{jane}>\nGesendet: Montag, 5. Januar 2026 09:00\nAn: Ana\n"
        "Betreff: Interview",
        "De : Jane Recruiter <{jane}>\nEnvoyé : lundi 5 janvier 2026 09:00\nÀ : Ana\n"
        "Objet : Entretien",
        "De: Jane Recruiter <{jane}>\nEnviado: lunes, 5 de enero de 2026 9:00\nPara: Ana\n"
        "Asunto: Entrevista",
        "Van: Jane Recruiter <{jane}>\nVerzonden: maandag 5 januari 2026 09:00\nAan: Ana\n"
        "Onderwerp: Sollicitatiegesprek",
        "От: Jane Recruiter <{jane}>\nОтправлено: 5 января 2026 г. 9:00\nКому: Ana\n"
        "Тема: Собеседование",
        "-----Messaggio originale-----\nDa: Jane Recruiter <{jane}>",
        "-----Ursprüngliche Nachricht-----",
        "On Mon, Jan 5, 2026 at 9:00 AM Jane Recruiter <{jane}> wrote:",
        "Am Mo., 5. Jan. 2026 um 09:00 Uhr schrieb Jane Recruiter <{jane}>:",
        "Le lun. 5 janv. 2026 à 09:00, Jane Recruiter <{jane}> a écrit :",
        "Il giorno lun 5 gen 2026 alle ore 09:00 Jane Recruiter <{jane}> ha scritto:",
    ],
)
def test_an_unmarked_quote_is_cut_at_its_header(header: str) -> None:
    body = f"Yes, Tuesday works.\n\n{header.format(jane=JANE)}\n\n{ASK}\n\nJane\n"
    assert text_of(body) == "Yes, Tuesday works."


@pytest.mark.parametrize(
    "attribution",
    [
        # Words mail-parser-reply knows, and some it doesn't (Dutch and Spanish Gmail, Russian,
        # Portuguese, an attribution wrapped over two lines).
        "On Mon, Jan 5, 2026 at 9:00 AM Jane Recruiter <{jane}> wrote:",
        "Op ma 5 jan 2026 om 09:00 schreef Jane Recruiter <{jane}>:",
        "El lun, 5 ene 2026 a las 9:00, Jane Recruiter (<{jane}>) escribió:",
        "Den mån 5 jan. 2026 kl 09:00 skrev Jane Recruiter <{jane}>:",
        "пн, 5 янв. 2026 г. в 09:00, Jane Recruiter <{jane}>:",
        "Em seg., 5 de jan. de 2026 às 09:00, Jane Recruiter <{jane}> escreveu:",
        "Le lun. 5 janv. 2026 à 09:00, Jane Recruiter <\n{jane}> a écrit :",
        "On Mon, Jan 5, 2026 at 9:00 AM Jane Recruiter\n<{jane}> wrote:",
    ],
)
def test_a_marked_quote_goes_with_its_attribution(attribution: str) -> None:
    body = f"Yes, Tuesday works.\n\n{attribution.format(jane=JANE)}\n\n> {ASK}\n>\n> Jane\n"
    assert text_of(body) == "Yes, Tuesday works."


def test_a_reply_between_quoted_lines_keeps_the_answers() -> None:
    body = f"> {ASK}\nYes.\n\n> And can you bring your ID?\nSure.\n"
    assert text_of(body) == "Yes.\n\nSure."


def test_whitespace_is_normalised() -> None:
    body = "\r\n\r\nYes,\u00a0Tuesday   \r\n\r\n\r\n\r\n\r\nworks.\t \r\n\r\n"
    assert text_of(body) == "Yes, Tuesday\n\nworks."


def test_latin1_is_read_as_windows_1252() -> None:
    # Outlook labels windows-1252 text (curly quotes, dashes) as iso-8859-1.
    message = parse(
        b"Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n"
        b"I\x92ll be there \x96 at 10\xa0am."
    )
    assert reply_text(message) == "I\u2019ll be there \u2013 at 10 am."


def test_a_utf8_body_labelled_latin1_is_read_as_utf8() -> None:
    message = parse(
        b"Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n"
        + "Café à 10 h, ça marche.".encode()
    )
    assert reply_text(message) == "Café à 10 h, ça marche."


@pytest.mark.parametrize("label", ["x-unknown", "unknown-8bit", '"bogus charset"', ""])
def test_an_unknown_or_missing_charset_falls_back(label: str) -> None:
    content_type = f"text/plain; charset={label}" if label else "text/plain"
    for body, expected in [
        ("Naïve café – 10€".encode("cp1252"), "Naïve café – 10€"),
        ("Naïve café – 10€".encode(), "Naïve café – 10€"),
    ]:
        message = parse(f"Content-Type: {content_type}\n\n".encode() + body)
        assert reply_text(message) == expected


def test_windows_1251_and_shift_jis() -> None:
    for charset, text in [
        ("windows-1251", "Да, вторник подходит."),
        ("Shift_JIS", "はい、大丈夫です。"),
    ]:
        message = parse(
            f"Content-Type: text/plain; charset={charset}\n\n".encode() + text.encode(charset)
        )
        assert reply_text(message) == text


def test_an_empty_text_part_beside_html_uses_the_html() -> None:
    message = parse(
        b"MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=b\n\n"
        b"--b\nContent-Type: text/plain; charset=utf-8\n\n\n"
        b"--b\nContent-Type: text/html; charset=utf-8\n\n<p>Yes &amp; thanks</p>\n--b--\n"
    )
    assert reply_text(message) == "Yes & thanks"


# -- never raises -------------------------------------------------------------------------------

ONLY_AN_ATTACHMENT = (
    b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
    b"Content-Type: application/pdf\nContent-Disposition: attachment; filename=cv.pdf\n"
    b"Content-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--b--\n"
)
ODD = [
    pytest.param(b"", id="empty"),
    pytest.param(b"Subject: hi\n\n", id="no-body"),
    pytest.param(ONLY_AN_ATTACHMENT, id="only-an-attachment"),
    pytest.param(
        b"Content-Type: text/plain; charset=utf-8\nContent-Disposition: attachment\n\nhi\n",
        id="a-text-attachment",
    ),
    pytest.param(b"Content-Type: multipart/alternative\n\nno boundary\n", id="no-boundary"),
    pytest.param(
        b"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n!!!not*base64===\n",
        id="bad-base64",
    ),
    pytest.param(
        b"Content-Type: text/html\n\n<div><p><b>unclosed<<>></i></blockquote><blockquote>"
        b"<table><tr><td>x</div>&bogus;&#xffffffff;<![CDATA[x]]><!--",
        id="malformed-html",
    ),
    pytest.param(b"Content-Type: text/html\n\n" + b"<div>" * 5000 + b"deep", id="deep-html"),
    pytest.param(b"Content-Type: text/plain; charset=utf-8\n\n\xff\xfe\x00bad", id="bad-bytes"),
]


@pytest.mark.parametrize("raw", ODD)
def test_odd_input_does_not_raise(raw: bytes) -> None:
    text = reply_text(parse(raw))
    assert isinstance(text, str)
    assert re.search(r"<[a-zA-Z/]", text) is None  # no tags ("<<>>" is text in HTML)


def test_attachments_give_no_text() -> None:
    assert reply_text(parse(ONLY_AN_ATTACHMENT)) == ""


def test_a_very_long_line_is_quick() -> None:
    # Some of mail-parser-reply's expressions are quadratic in a line's length: it only sees
    # the first few hundred characters of each line.
    line = "On " + "and on " * 10_000
    started = time.monotonic()
    assert reply_text(plain(f"{line}\n\nAna")) == f"{line.rstrip()}\n\nAna"
    assert time.monotonic() - started < 5
