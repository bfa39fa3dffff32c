"""A message of files alone is never a blank line: the inbox row says "Sent a file". SQLite and
PostgreSQL."""

from __future__ import annotations

from tests.files_support import PDF, uploaded
from tests.support import World, sent, start
from tests.web_support import Browser


def test_the_inbox_names_a_message_of_files_alone(tess: Browser, world: World) -> None:
    chat = start(world["emp_team"], "application", application="app1")
    cv = uploaded(world["cand"], chat, "cv.pdf", PDF)
    sent(world["cand"].send(chat, "", attachments=[cv["id"]]))

    html = tess.page("/inbox")

    row = html[html.index(f'href="/conversations/{chat}"') :][:3000]
    assert "Sent a file" in row
