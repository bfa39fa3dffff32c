"""The new text of an inbound reply, without the quoted history or the signature.

Candidates answer from any mail client. :func:`reply_text` picks the body (text/plain, else
text/html turned into text), decodes it whatever its charset label says, drops the clients' quote
containers from HTML, then lets mail-parser-reply cut the text at the first quote header ("On …
wrote:", "Am … schrieb …:", "Le … a écrit :", Outlook's "From:/Sent:/To:/Subject:" block in its
languages, "-----Original Message-----"). What the library misses is added here, each with its
reason: see ``_cut_extra_headers``, ``_cut_signature`` and ``_drop_quoted_lines``.
"""

from __future__ import annotations

import codecs
import re
from email.message import EmailMessage, Message
from typing import Final

from bs4 import BeautifulSoup
from bs4.element import NavigableString, PageElement, PreformattedString, Tag
from mailparser_reply import EmailMessage as ParsedReply
from mailparser_reply.constants import MAIL_LANGUAGES

__all__ = ["reply_text"]

# Every language mail-parser-reply knows quote headers for (it ignores names it does not know;
# "david" is a mail server, not a language).
LANGUAGES: Final = ("en", "de", "fr", "es", "nl", "it", "pl", "sv", "da", "cs", "ja", "ko", "zh")

# A reply's new text is at its top; past this much text everything is quoted history. The cap
# also bounds the library's regular expressions, some of which are quadratic in a line's length.
_MAX_TEXT: Final = 100_000
_MAX_HTML: Final = 2_000_000
_MAX_LINE: Final = 300


def reply_text(message: EmailMessage) -> str:
    """The new text a person wrote in a reply: quoted history and signature removed.

    The body is text/plain when there is one (and it is not an attachment), else text/html as
    text. Removed: the quote header and everything after it, quoted ("> ") lines, the "-- "
    signature and the lines phone and webmail apps add ("Sent from my iPhone", "Get Outlook for
    iOS"). A sign-off ("Thanks,\\nAna") is kept: mail-parser-reply would cut at any line that
    starts with "Thanks," or "Best," and lose whatever follows it. Lines lose their leading and
    trailing spaces; runs of blank lines become one. Returns "" when nothing new is left, and on
    any input it cannot read (it never raises).
    """
    try:
        return _reply_text(message)
    except Exception:  # a reply that cannot be read is an empty reply, never a failed delivery
        return ""


def _reply_text(message: EmailMessage) -> str:
    plain = message.get_body(preferencelist=("plain",))
    if plain is not None:
        text = _decoded(plain)
        if text.strip():  # some clients send an empty text/plain beside the real HTML
            return _clean(_unflow(text, plain))
    html = message.get_body(preferencelist=("html",))
    if html is None:
        return ""
    return _clean(html_to_text(_decoded(html)[:_MAX_HTML]))


# -- decoding ------------------------------------------------------------------------------------

# Labels whose bytes are usually written by a larger charset: decode with the superset (as
# browsers do), so Outlook's "iso-8859-1" curly quotes and Windows' extra kanji survive.
_SUPERSETS: Final = {
    "iso8859-1": "cp1252",
    "ascii": "cp1252",
    "shift_jis": "cp932",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
}
# Multi-byte charsets, whose bytes can't be told from UTF-8 by validity alone.
_MULTIBYTE: Final = ("utf", "shift_jis", "cp932", "euc", "gb", "big5", "iso2022", "hz", "cp94")


def _decoded(part: Message) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    return decode_bytes(data, part.get_content_charset())


def decode_bytes(data: bytes, label: str | None) -> str:
    """``data`` as text: by its charset label, falling back sensibly when the label is wrong or
    unknown (UTF-8 first, then windows-1252, then latin-1, which decodes any byte)."""
    codec = _codec(label)
    if codec is None:
        for name in ("utf-8", "cp1252"):
            try:
                return data.decode(name)
            except UnicodeDecodeError:
                pass
        return data.decode("latin-1")
    if not codec.startswith(_MULTIBYTE) and not data.isascii():
        # A single-byte label on bytes that are valid UTF-8 is a wrong label: text in a
        # single-byte charset is practically never valid UTF-8 by chance.
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    best = _SUPERSETS.get(codec, codec)
    for name in (best, codec, "utf-8"):
        try:
            return data.decode(name)
        except UnicodeDecodeError:
            pass
    return data.decode(best, errors="replace")


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    try:
        return codecs.lookup(label.strip().strip("\"'")).name
    except (LookupError, ValueError):
        return None


def _unflow(text: str, part: Message) -> str:
    """Undo RFC 3676 format=flowed (Thunderbird, Apple Mail): a line ending in a space goes on in
    the next line. The email package leaves it as is, so a paragraph would come out wrapped."""
    if str(part.get_param("format", "")).lower() != "flowed":
        return text
    delsp = str(part.get_param("delsp", "")).lower() == "yes"
    out: list[str] = []
    joining = False
    for raw in text.replace("\r\n", "\n").split("\n"):
        depth = len(raw) - len(raw.lstrip(">"))
        line = raw[depth:]
        if line.startswith(" "):  # space-stuffing
            line = line[1:]
        soft = line.endswith(" ") and line != "-- "
        if soft and delsp:
            line = line[:-1]
        if joining and out:
            out[-1] += line
        else:
            out.append(">" * depth + (" " if depth else "") + line)
        joining = soft
    return "\n".join(out)


# -- HTML to text ---------------------------------------------------------------------------------

# The quoted message and everything after it in the document (Outlook on the web, new Outlook,
# Outlook for iOS/Android and Mac put the quote last, after these markers).
_CUT_FROM: Final = "#appendonsend, #divRplyFwdMsg, #mail-editor-reference-message-container"
# Containers that hold only quoted history (with its "On … wrote:" line, for most of them).
_QUOTES: Final = ", ".join(
    [
        ".gmail_quote",  # Gmail: div.gmail_quote holding .gmail_attr and blockquote.gmail_quote
        ".gmail_attr",
        'blockquote[type="cite" i]',  # Apple Mail, Thunderbird
        ".moz-cite-prefix",  # Thunderbird's "On … wrote:" line
        '[class*="yahoo_quoted"]',  # Yahoo (its class names get a "ydp…" prefix in replies)
        '[id*="yahoo_quoted"]',
    ]
)
_SKIPPED: Final = frozenset({"script", "style", "head", "title", "template", "noscript", "img"})
_BLOCKS: Final = frozenset(
    {
        *("address", "article", "aside", "blockquote", "caption", "center", "dd", "details"),
        *("dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form"),
        *("header", "hr", "li", "main", "nav", "ol", "pre", "section", "summary", "table"),
        *("tbody", "thead", "tfoot", "tr", "ul"),
    }
)
_PARAGRAPHS: Final = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6"})
_SPACES: Final = re.compile(r"[ \t\n\r\f]+")
_NO_MARGIN: Final = re.compile(r"margin(?:-bottom)?\s*:\s*0(?![\d.]*[1-9])(?:[a-z%]*)?\s*(?:;|$)")


def html_to_text(html: str) -> str:
    """An HTML body as plain text without the quoted history: line breaks for <br> and blocks, a
    blank line between paragraphs (not Outlook's margin-less "MsoNormal" ones), entities
    decoded, no tags."""
    soup = BeautifulSoup(html, "html.parser")
    cut = {id(tag) for tag in soup.select(_CUT_FROM)}
    quotes = {id(tag) for tag in soup.select(_QUOTES)}
    out = _TextBuilder()
    stack: list[tuple[PageElement, bool]] = [(soup, False)]
    pre = 0
    while stack:
        node, closing = stack.pop()
        if isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):  # comments, CDATA, doctype
                out.text(str(node), keep_spaces=pre > 0)
            continue
        if not isinstance(node, Tag):
            continue
        name = node.name.lower()
        if closing:
            if name == "pre":
                pre -= 1
            out.block(_block_lines(node, name))
            if name in ("td", "th"):
                out.text(" ")
            continue
        if id(node) in cut:
            break
        if name in _SKIPPED:
            continue
        if name == "blockquote" and (id(node) in quotes or is_attribution(out.last_line())):
            out.drop_attribution()  # Apple Mail's "On … wrote:" may stand before its blockquote
            continue
        if id(node) in quotes:
            continue
        if name == "br":
            out.newline()
            continue
        out.block(_block_lines(node, name))
        if name == "li":
            out.text("- ")
        if name == "pre":
            pre += 1
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(node.contents))
    return out.result()


def _block_lines(tag: Tag, name: str) -> int:
    """How many line breaks a block ends its line with: 2 (a blank line) around paragraphs."""
    if name in _PARAGRAPHS:
        classes = tag.get_attribute_list("class")
        style = str(tag.get("style") or "").lower()
        if any(str(c).startswith("Mso") for c in classes) or _NO_MARGIN.search(style):
            return 1
        return 2
    return 1 if name in _BLOCKS else 0


class _TextBuilder:
    def __init__(self) -> None:
        self._parts: list[str] = []
        self._newlines = 0  # how many line breaks the text ends with

    def text(self, text: str, *, keep_spaces: bool = False) -> None:
        if not keep_spaces:
            text = _SPACES.sub(" ", text)
            if self._newlines or not self._parts:
                text = text.lstrip(" ")
        if not text:
            return
        self._parts.append(text)
        body = text.rstrip(" \t\n\r\f")  # a no-break space is text: Outlook's blank lines
        breaks = text[len(body) :].count("\n")
        self._newlines = breaks if body else self._newlines + breaks

    def newline(self) -> None:
        self._parts.append("\n")
        self._newlines += 1

    def block(self, lines: int) -> None:
        if not self._parts:
            return
        while self._newlines < lines:
            self.newline()

    def last_line(self) -> str:
        """The last non-blank line so far (its last _MAX_LINE characters at most)."""
        tail = ""
        for part in reversed(self._parts[-200:]):
            tail = part + tail
            stripped = tail.rstrip()
            if "\n" in stripped or len(stripped) > _MAX_LINE:
                break
        return tail.rstrip().rpartition("\n")[2]

    def drop_attribution(self) -> None:
        """A quote follows: drop the line before it when it is its "On … wrote:" line."""
        if not is_attribution(self.last_line()):
            return
        removed = ""
        while self._parts:
            removed = self._parts.pop() + removed
            stripped = removed.rstrip()
            if "\n" in stripped:
                self._parts.append(stripped[: stripped.rfind("\n") + 1])
                break
        self._newlines = 1 if self._parts else 0

    def result(self) -> str:
        return "".join(self._parts)


# -- text ----------------------------------------------------------------------------------------

# mail-parser-reply's quote header expression for all LANGUAGES (the same one it splits with).
_HEADER: Final[re.Pattern[str]] = ParsedReply(text="", languages=list(LANGUAGES)).HEADER_REGEX

# An attribution line in any language: it ends with a colon and names an address, a time or a
# date. Only used right before quoted lines or a quote container. mail-parser-reply knows the
# wording in its languages only, and one line at a time (Gmail's plain text wraps a long
# "Le … <\naddress> a écrit :" in two).
_ANY_ATTRIBUTION: Final = re.compile(
    r"^(?=.*(?:@|\d:\d\d|\d[./-]\d{1,2}[./-]\d|\b(?:19|20)\d\d\b)).{4,300}[:\uff1a]$"
)
_WRAPPED_ADDRESS: Final = re.compile(r"^\S*@\S*>")


def is_attribution(line: str) -> bool:
    line = line.strip()
    if not line or len(line) > _MAX_LINE:
        return False
    return bool(_ANY_ATTRIBUTION.match(line) or _HEADER.fullmatch(line))


# Separators and header blocks mail-parser-reply doesn't know: "-----Original Message-----" in
# other languages (it knows the English one), and Outlook's From/Sent/To block in languages it
# has no words for (Russian, Japanese: its "ja" entry expects English labels).
_EXTRA_HEADERS: Final = re.compile(
    r"^[ \t]*-{5,}[ \t]*(?:Ursprüngliche Nachricht|Message d'origine|Mensaje original"
    r"|Oorspronkelijk bericht|Messaggio originale|Ursprungligt meddelande|Originalmeddelelse"
    r"|Mensagem original|Исходное сообщение|Původní zpráva|Wiadomość oryginalna|元のメッセージ"
    r"|Original message)[ \t]*-{5,}[ \t]*$"
    r"|(?:^[ \t]*\*?(?:От|Отправлено|Кому|Тема|Дата|Копия|差出人|送信日時|送信日|宛先|件名|CC)"
    r"\*?[ \t]*[:\uff1a].*(?:\n|$)){2,}",
    re.MULTILINE | re.IGNORECASE,
)

# The "-- " signature delimiter (RFC 3676 §4.3). mail-parser-reply finds it too, but only in
# its signature expression, which also cuts at any line starting with "Thanks," or "Best,".
_DELIMITER: Final = re.compile(r"^--[ \t]*$", re.MULTILINE)
# The line a phone or webmail app adds. The library's own list (its "sent_from") plus what it
# misses: "Sent from Mail for Windows", "Sent from Yahoo Mail …", "Sent from Outlook",
# "Von meinem iPhone gesendet", "Envoyé de mon iPhone", "Verstuurd vanaf mijn iPhone", … The rest
# of the line must look like an app's name (a link allowed), not a sentence.
_APP_PHRASES: Final = [
    str(entry["sent_from"]).removesuffix(".*")  # the rest of the line is checked below
    for entry in MAIL_LANGUAGES.values()
    if entry.get("sent_from")
]
_APP_LINE: Final = re.compile(
    r"^[ \t]*(?:"
    + "|".join(_APP_PHRASES)
    + r"|Sent from (?:my|Mail|Outlook|Yahoo|AOL|Samsung|Proton)|Sent via|Sent with"
    r"|Get Outlook for|Von meinem .{1,40} gesendet|Envoy[ée] de mon|Enviado desde mi"
    r"|Enviado do meu|Verstuurd vanaf mijn|Verzonden met|Inviato da|Отправлено \u0441"
    r")(?:[^\n.!?<]|<[^>\n]*>){0,100}\.?[ \t]*$",
    re.MULTILINE | re.IGNORECASE,
)
_QUOTED: Final = re.compile(r"^[ \t]*>")
_SEPARATOR_LINE: Final = re.compile(r"^[_\-=*]{10,}$")
_LONG_RULE: Final = re.compile(r"^ ?[_-]{32,}")
_POLISH_LABEL: Final = re.compile(r"^[>* ]*(?:Od|Wysłano|Do|Temat|Data|DW):", re.I | re.M)
_INVISIBLE: Final = dict.fromkeys(map(ord, "\u200b\ufeff"), None) | dict.fromkeys(
    map(ord, "\xa0\u202f\u2007"), " "
)


def _clean(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)[:_MAX_TEXT]
    all_lines = _cut_extra_headers(text).split("\n")
    lines = _split_at_quote_header(all_lines)
    if lines is None:
        lines = _below_quote(all_lines)
    text = _cut_signature("\n".join(lines))
    return _normalise(_drop_quoted_lines(text.split("\n")))


def _split_at_quote_header(lines: list[str]) -> list[str] | None:
    """The lines before the first quote header mail-parser-reply finds; None when the text
    starts with one.

    The library sees each line cut to _MAX_LINE characters: some of its expressions take time
    quadratic in a line's length (a 15,000-character line starting with "On " takes seconds),
    and no quote header is that long. Lines of 32+ "_" or "-" are blanked for it, as it would
    delete them (and shift the line count this relies on)."""
    probe = [line.strip() for line in lines]
    probe = [
        "" if _LONG_RULE.match(line) else line[:_MAX_LINE] + "…" if len(line) > _MAX_LINE else line
        for line in probe
    ]
    parsed = ParsedReply(text="\n".join(probe), languages=list(LANGUAGES)).read()
    if len(parsed.replies) > 1 and len(_POLISH_LABEL.findall(str(parsed.replies[1].headers))) < 2:
        # Its Polish Outlook header takes one "Od:", "Do:" or "Data:" line (the others want
        # two label lines): that is more likely "Data: …" in the reply than a header.
        languages = [language for language in LANGUAGES if language != "pl"]
        parsed = ParsedReply(text="\n".join(probe), languages=languages).read()
    first = parsed.replies[0] if parsed.replies else None
    if first is None or first.headers:
        return None
    content = str(first.content)
    normalised = str(parsed.text)
    start = normalised.find(content)
    if start < 0:  # not expected: the content is a slice of the library's text
        return [line.strip() for line in lines]
    return [line.strip() for line in lines[: normalised.count("\n", 0, start + len(content)) + 1]]


def _below_quote(lines: list[str]) -> list[str]:
    """What follows the quote when the text starts with one: a reply written below the quote
    (Mutt, Alpine; also inline answers), or nothing. Only a quote marked with "> " on every line
    tells where it ends; an unmarked one (Outlook's) is quote to the end."""
    first = next((i for i, line in enumerate(lines) if _QUOTED.match(line)), None)
    if first is None or sum(1 for line in lines[:first] if line.strip()) > 2:
        return []
    return lines[first:]


def _cut_extra_headers(text: str) -> str:
    match = _EXTRA_HEADERS.search(text)
    return text[: match.start()] if match else text


def _cut_signature(text: str) -> str:
    """Everything from the "-- " delimiter or the app's "Sent from …" line on."""
    ends = [m.start() for m in (_DELIMITER.search(text), _APP_LINE.search(text)) if m]
    return text[: min(ends)] if ends else text


def _drop_quoted_lines(lines: list[str]) -> list[str]:
    """Without "> " lines, and without the attribution line right before a block of them.

    mail-parser-reply keeps quoted lines that follow no header it knows (an inline reply, a
    language it lacks, a header it couldn't match on one line)."""
    quote_next = [False] * len(lines)  # whether the next non-blank line is quoted
    following = False
    for index in range(len(lines) - 1, -1, -1):
        quote_next[index] = following
        if lines[index].strip():
            following = bool(_QUOTED.match(lines[index]))
    kept: list[str] = []
    for index, line in enumerate(lines):
        if _QUOTED.match(line):
            continue
        if quote_next[index] and is_attribution(line):
            if kept and (kept[-1].rstrip().endswith("<") or _WRAPPED_ADDRESS.match(line)):
                kept.pop()  # the first half of a wrapped attribution
            continue
        kept.append(line)
    return kept


def _normalise(lines: list[str]) -> str:
    lines = [line.rstrip() for line in lines]
    while lines and (not lines[-1] or _SEPARATOR_LINE.match(lines[-1])):
        lines.pop()
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")
