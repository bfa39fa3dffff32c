"""The templates page as a browser without our script uses it: the list, the forms (with
CSRF) that create, change and delete, errors shown at the field, who may change what, and the
composer's picker markup where a composer is."""

from __future__ import annotations

import re
import time
from typing import Any

from fastapi.testclient import TestClient

from tests.support import Api, World, body, start
from tests.web_support import Browser, texts

T = "/api/v1/templates"


def api_templates(world: World, who: str = "emp_team") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = body(world[who].get(T), 200)["items"]
    return items


def form(**fields: str) -> dict[str, str]:
    return {"name": "Invite", "subject": "", "body": "Hi {{candidate.first_name}}"} | fields


def test_the_empty_page_teaches_and_links_back_to_settings(tess: Browser) -> None:
    html = tess.page("/templates")
    assert "No templates yet" in html and "{{candidate.first_name | there}}" in html
    assert 'href="/templates/new"' in html and 'href="/settings"' in html
    # The merge-field reference lists every field.
    assert "{{application.stage}}" in html and "{{sender.organization}}" in html
    assert 'href="/templates"' in tess.page("/settings")


def test_create_from_the_form_then_it_is_listed(tess: Browser, world: World) -> None:
    new = tess.page("/templates/new")
    assert 'id="template-form"' in new and "data-insert=" in new
    r = tess.form("/templates/new", form(subject="About {{job.title}}", shared="on"))
    assert r.status_code == 303, r.text
    [t] = api_templates(world)
    assert (t["name"], t["subject"], t["shared"]) == ("Invite", "About {{job.title}}", True)
    assert r.headers["location"] == f"/templates?saved={t['id']}"
    html = tess.page(r.headers["location"])
    assert "The template is saved." in html
    assert texts(html, "template-name") == ["Invite"]
    assert "Shared" in texts(html, "tag")


def test_errors_are_shown_at_the_field_and_what_was_typed_is_kept(
    tess: Browser, world: World
) -> None:
    r = tess.form("/templates/new", form(name="", body="Dear {{candidate.nick}}"))
    assert r.status_code == 422
    html = r.text
    assert 'id="template-name-error"' in html and "Name is required" in html
    assert 'id="template-body-error"' in html and "{{candidate.nick}}" in html
    assert 'aria-invalid="true"' in html
    assert "Dear {{candidate.nick}}</textarea>" in html
    assert api_templates(world) == []
    r = tess.form("/templates/new", form(subject="two\nlines"))
    assert r.status_code == 422 and 'id="template-subject-error"' in r.text
    r = tess.form("/templates/new", form(name="x" * 201))
    assert r.status_code == 422 and "at most 200 characters" in r.text
    assert api_templates(world) == []


def test_edit_and_delete_from_the_forms(tess: Browser, world: World) -> None:
    tess.form("/templates/new", form())
    [t] = api_templates(world)
    html = tess.page(f"/templates/{t['id']}")
    assert "Edit template" in html and 'class="template-delete"' in html and "data-confirm=" in html
    r = tess.form(f"/templates/{t['id']}", form(name="Renamed", body="Hello {{sender.name}}"))
    assert r.status_code == 303
    [t] = api_templates(world)
    assert (t["name"], t["body"], t["shared"], t["subject"]) == (
        "Renamed",
        "Hello {{sender.name}}",
        False,
        None,
    )
    r = tess.form(f"/templates/{t['id']}", form(body="{{ nope }}"))
    assert r.status_code == 422 and 'id="template-body-error"' in r.text
    r = tess.form(f"/templates/{t['id']}/delete")
    assert r.status_code == 303 and r.headers["location"] == "/templates?saved=deleted"
    assert api_templates(world) == []
    assert "The template is deleted." in tess.page("/templates?saved=deleted")


def test_forms_without_csrf_or_from_elsewhere_change_nothing(tess: Browser, world: World) -> None:
    r = tess.form("/templates/new", form(), csrf=False)
    assert r.status_code == 403 and "This form has expired" in r.text
    r = tess.form("/templates/new", form() | {"csrf": "forged"}, csrf=False)
    assert r.status_code == 403
    assert api_templates(world) == []
    tess.form("/templates/new", form())
    [t] = api_templates(world)
    assert tess.form(f"/templates/{t['id']}/delete", csrf=False).status_code == 403
    r = tess.client.post(
        f"/templates/{t['id']}/delete",
        data={"csrf": tess.csrf},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert len(api_templates(world)) == 1


def test_who_may_change_a_shared_template(client: TestClient, api: Api, world: World) -> None:
    tess = Browser.signed_in(client, api, "emp_team")
    tess.form("/templates/new", form(name="Team invite", shared="on"))
    [t] = api_templates(world)
    otto = Browser.signed_in(client, api, "emp_other")
    html = otto.page(f"/templates/{t['id']}")
    assert "Shared by Tess Team" in html and 'id="template-form"' not in html
    assert otto.form(f"/templates/{t['id']}", form(name="Mine")).status_code == 403
    assert otto.form(f"/templates/{t['id']}/delete").status_code == 403
    ada = Browser.signed_in(client, api, "emp_admin")
    assert 'id="template-form"' in ada.page(f"/templates/{t['id']}")
    gus = Browser.signed_in(client, api, "other_emp")
    gus.page(f"/templates/{t['id']}", status=404)
    assert gus.form(f"/templates/{t['id']}/delete").status_code == 404
    assert len(api_templates(world)) == 1


def test_candidates_may_not_open_the_page(carla: Browser) -> None:
    carla.page("/templates", status=403)
    assert 'href="/templates"' not in carla.page("/settings")


def test_hostile_names_are_escaped(tess: Browser, world: World) -> None:
    tess.form("/templates/new", form(name="<script>alert(1)</script>", body="<b>{{job.title}}</b>"))
    html = tess.page("/templates")
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "<b>" not in html


def test_the_composer_has_the_picker_for_staff_only(
    tess: Browser, carla: Browser, world: World
) -> None:
    conv = start(world["emp_team"], "application", application="app1")
    html = tess.page(f"/conversations/{conv}")
    assert re.search(rf'class="tpl-bar" data-templates[^>]*data-conversation="{conv}"', html)
    assert 'role="listbox"' in html and 'href="/templates"' in html
    assert re.search(r"<script src=\"/static/templates\.js\?v=[0-9a-f]{12}\" defer>", html)
    # Before the picker, right where the composer's row starts.
    assert html.index("data-templates") < html.index('class="compose-row"')
    assert "data-templates" not in carla.page(f"/conversations/{conv}")
    # The composer that starts a chat on the candidate profile knows what it will be about.
    new = tess.page("/conversations/new", kind="application", application="app2")
    assert re.search(r'data-templates[^>]*data-application="app2"', new)


def test_an_unclosed_placeholder_of_many_spaces_is_a_quick_422(tess: Browser, world: World) -> None:
    started = time.monotonic()
    r = tess.form("/templates/new", form(body="{{candidate.name|" + " " * 9000))
    assert r.status_code == 422 and 'id="template-body-error"' in r.text
    assert time.monotonic() - started < 1
    assert api_templates(world) == []
