"""Templates through the API: CRUD and who may do what, merge fields with hostile values and
fallbacks, previews that show what is missing, and sending from a template."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.support import As, World, assert_error, body, sent, start

T = "/api/v1/templates"


def create(
    who: As, name: str = "Thanks", text: str = "Hi {{candidate.first_name}}", **extra: Any
) -> dict[str, Any]:
    return body(who.post(T, {"name": name, "body": text, **extra}), 201)


def names(who: As) -> list[str]:
    return [t["name"] for t in body(who.get(T), 200)["items"]]


# --- CRUD and shape ---------------------------------------------------------------------------


def test_create_answers_the_contract_shape_and_lists_it(world: World) -> None:
    t = create(world["emp_team"], subject="About {{job.title}}")
    assert set(t) >= {"id", "name", "body", "subject", "shared", "author", "updated_at"}
    assert t["author"] == {"id": "emp_team", "name": "Tess Team"}
    assert (t["shared"], t["subject"], t["can_edit"]) == (False, "About {{job.title}}", True)
    listed = body(world["emp_team"].get(T), 200)
    assert [i["id"] for i in listed["items"]] == [t["id"]]
    assert "candidate.first_name" in {f["name"] for f in listed["fields"]}
    assert body(world["emp_team"].get(f"{T}/{t['id']}"), 200)["id"] == t["id"]


def test_patch_changes_only_what_is_given_and_null_subject_clears(world: World) -> None:
    me = world["emp_team"]
    t = create(me, subject="S")
    patched = body(me.patch(f"{T}/{t['id']}", {"name": "Renamed", "shared": True}), 200)
    assert (patched["name"], patched["body"], patched["subject"], patched["shared"]) == (
        "Renamed",
        t["body"],
        "S",
        True,
    )
    assert body(me.patch(f"{T}/{t['id']}", {"subject": None}), 200)["subject"] is None
    assert_error(me.patch(f"{T}/{t['id']}", {"name": None}), 422, fields={"name"})
    assert_error(me.patch(f"{T}/{t['id']}", {"owner": 1}), 422, fields={"owner"})


def test_delete_then_it_is_gone(world: World) -> None:
    me = world["emp_team"]
    t = create(me)
    assert me.delete(f"{T}/{t['id']}").status_code == 204
    assert_error(me.delete(f"{T}/{t['id']}"), 404, "not_found")
    assert_error(me.get(f"{T}/{t['id']}"), 404, "not_found")
    assert names(me) == []


@pytest.mark.parametrize(
    ("payload", "bad"),
    [
        ({"body": "x"}, {"name"}),
        ({"name": "n"}, {"body"}),
        ({"name": "", "body": "x"}, {"name"}),
        ({"name": "   ", "body": "x"}, {"name"}),
        ({"name": "n", "body": "  \n "}, {"body"}),
        ({"name": "x" * 201, "body": "x"}, {"name"}),
        ({"name": "two\nlines", "body": "x"}, {"name"}),
        ({"name": "n", "body": "x", "subject": "s" * 301}, {"subject"}),
        ({"name": "n", "body": "x", "subject": "a\r\nBcc: x"}, {"subject"}),
        ({"name": "n", "body": "x" * 10_001}, {"body"}),
        ({"name": "n", "body": "nul\x00"}, {"body"}),
        ({"name": "n", "body": "x", "shared": "maybe"}, {"shared"}),
        ({"name": "n", "body": "Hi {{candidate.nickname}}"}, {"body"}),
        ({"name": "n", "body": "x", "subject": "{{ job.salary | lots }}"}, {"subject"}),
        ({"name": "n", "body": "Hi {{candidate.name"}, {"body"}),
    ],
)
def test_bad_input_is_422_naming_the_field_and_saves_nothing(
    world: World, payload: dict[str, Any], bad: set[str]
) -> None:
    me = world["emp_team"]
    assert_error(me.post(T, payload), 422, fields=bad)
    assert names(me) == []


def test_an_unknown_field_is_named_in_create_and_patch(world: World) -> None:
    me = world["emp_team"]
    error = assert_error(me.post(T, {"name": "n", "body": "Dear {{ candidate.surname }}"}), 422)
    assert "{{candidate.surname}}" in error["fields"]["body"]
    t = create(me)
    error = assert_error(me.patch(f"{T}/{t['id']}", {"subject": "{{recruiter}}"}), 422)
    assert "{{recruiter}}" in error["fields"]["subject"]
    assert body(me.get(f"{T}/{t['id']}"), 200)["subject"] is None


@pytest.mark.parametrize("text", ["{{a|" + " " * 9000, "{{" + " " * 9000, "{{ a | b" * 1000])
def test_an_unclosed_placeholder_of_many_spaces_is_a_quick_422(world: World, text: str) -> None:
    # The old pattern took minutes over these, inside the write turn every writer waits for.
    me = world["emp_team"]
    t = create(me)
    started = time.monotonic()
    assert_error(me.post(T, {"name": "n", "body": text}), 422, fields={"body"})
    assert_error(me.patch(f"{T}/{t['id']}", {"body": text}), 422, fields={"body"})
    assert time.monotonic() - started < 1
    assert names(me) == ["Thanks"]


def test_a_fallback_may_hold_a_bar_or_be_empty(world: World) -> None:
    me = world["emp_team"]
    t = create(me, text="Hi {{ candidate.first_name |there | friend }}{{candidate.name|  }}!")
    assert preview(me, t["id"]) == {"subject": None, "body": "Hi there | friend!", "missing": []}


# --- who may do what ----------------------------------------------------------------------------


def test_candidates_get_403_everywhere(world: World) -> None:
    t = create(world["emp_team"], shared=True)
    cand = world["cand"]
    for response in (
        cand.get(T),
        cand.post(T, {"name": "n", "body": "b"}),
        cand.patch(f"{T}/{t['id']}", {"name": "x"}),
        cand.delete(f"{T}/{t['id']}"),
        cand.post(f"{T}/{t['id']}/preview", {}),
    ):
        assert_error(response, 403, "staff_only")


def test_visibility_own_and_shared_in_the_organisation(world: World) -> None:
    mine = create(world["emp_team"], "Personal")
    shared = create(world["emp_team"], "Shared", shared=True)
    assert names(world["emp_team"]) == ["Personal", "Shared"]
    assert names(world["emp_other"]) == ["Shared"]  # same org: the shared one only
    assert names(world["other_emp"]) == []  # another organisation
    assert names(world["sp_in"]) == []
    for tid in (mine["id"], shared["id"]):
        assert_error(world["other_emp"].get(f"{T}/{tid}"), 404)
        assert_error(world["other_emp"].patch(f"{T}/{tid}", {"name": "x"}), 404)
        assert_error(world["other_emp"].delete(f"{T}/{tid}"), 404)
        assert_error(world["other_emp"].post(f"{T}/{tid}/preview", {}), 404)
    # A colleague's personal template is invisible to the organisation's admin, too.
    assert_error(world["emp_admin"].patch(f"{T}/{mine['id']}", {"name": "x"}), 404)


def test_a_shared_template_leaves_the_organisation_with_its_author(world: World) -> None:
    shared = create(world["emp_team"], "Shared", shared=True)
    path = f"{T}/{shared['id']}"
    world.api.staff("emp_team", "Tess Team", "globex")
    # Acme no longer sees, uses or edits it; globex never sees it; its author still has it.
    assert names(world["emp_other"]) == [] and names(world["other_emp"]) == []
    for who in ("emp_other", "emp_admin", "other_emp"):
        assert_error(world[who].get(path), 404)
        assert_error(world[who].post(f"{path}/preview", {}), 404)
        assert_error(world[who].patch(path, {"name": "x"}), 404)
    assert names(world["emp_team"]) == ["Shared"]
    # Back in acme, it is shared there again.
    world.api.staff("emp_team", "Tess Team", "acme")
    assert names(world["emp_other"]) == ["Shared"]


def test_a_shared_template_is_changed_by_its_author_or_an_admin_only(world: World) -> None:
    shared = create(world["emp_team"], "Shared", shared=True)
    path = f"{T}/{shared['id']}"
    other = body(world["emp_other"].get(path), 200)
    assert other["can_edit"] is False
    assert_error(world["emp_other"].patch(path, {"name": "Mine now"}), 403)
    assert_error(world["emp_other"].delete(path), 403)
    admin = body(world["emp_admin"].get(path), 200)
    assert admin["can_edit"] is True
    edited = body(world["emp_admin"].patch(path, {"body": "Edited by the admin"}), 200)
    assert edited["author"]["id"] == "emp_team"  # still its author's
    assert world["emp_admin"].delete(path).status_code == 204
    assert names(world["emp_team"]) == []


# --- rendering ----------------------------------------------------------------------------------


def preview(who: As, tid: int, **refs: Any) -> dict[str, Any]:
    return body(who.post(f"{T}/{tid}/preview", refs), 200)


def test_every_field_and_fallbacks_with_spaces(world: World) -> None:
    me = world["emp_team"]
    text = (
        "{{candidate.name}}|{{candidate.first_name}}|{{job.title}}|{{employer.name}}|"
        "{{sender.name}}|{{sender.first_name}}|{{sender.organization}}|{{application.stage}}|"
        "{{  candidate.first_name  |  there  }}"
    )
    t = create(me, text=text)
    conv = start(me, "application", application="app1")
    out = preview(me, t["id"], conversation=conv)
    assert out == {
        "subject": None,
        "body": "Carla Candidate|Carla|Registered Nurse|Acme Health|Tess Team|Tess|Acme Health|"
        "offer accepted|Carla",
        "missing": [],
    }


def test_hostile_values_stay_text(world: World) -> None:
    api = world.api
    api.candidate("evil", "{{sender.name}} <script>alert(1)</script>")
    api.job("job_evil", r"Nurse {{ {{job.title}} }} \1 \g<0> $1", "acme", team=["emp_team"])
    api.application("app_evil", "job_evil", "evil", "applied")
    me = world["emp_team"]
    t = create(me, text="Hi {{candidate.name}}, about {{job.title}} from {{sender.name}}")
    conv = start(me, "application", application="app_evil")
    out = preview(me, t["id"], conversation=conv)
    assert out["body"] == (
        "Hi {{sender.name}} <script>alert(1)</script>, about Nurse {{ {{job.title}} }} "
        r"\1 \g<0> $1 from Tess Team"
    )
    assert out["missing"] == []
    message = sent(me.post(f"/api/v1/conversations/{conv}/messages", {"template": t["id"]}))
    assert message["body"] == out["body"]


def test_preview_shows_what_is_missing_without_failing(world: World) -> None:
    me = world["emp_team"]
    t = create(
        me,
        text="Hi {{candidate.first_name}} and {{candidate.first_name}}, {{application.stage | hi}}",
        subject="{{job.title}} for {{candidate.name}}",
    )
    job_chat = start(me, "job_partners", job="job1")
    out = preview(me, t["id"], conversation=job_chat)
    assert out["body"] == "Hi {{candidate.first_name}} and {{candidate.first_name}}, hi"
    assert out["subject"] == "Registered Nurse for {{candidate.name}}"
    assert out["missing"] == ["candidate.first_name", "candidate.name"]
    # Without any context only the sender's fields have values.
    assert preview(me, t["id"])["missing"] == [
        "candidate.first_name",
        "job.title",
        "candidate.name",
    ]


def test_preview_for_a_conversation_not_yet_started(world: World) -> None:
    me = world["emp_team"]
    t = create(me, text="{{candidate.first_name}}/{{job.title}}/{{application.stage}}")
    assert preview(me, t["id"], application="app2")["body"] == "Dan/Registered Nurse/interview"
    assert preview(me, t["id"], candidate="cand", job="job1")["body"] == (
        "Carla/Registered Nurse/{{application.stage}}"
    )
    # What the caller cannot see reads as missing: 404, like a conversation they are not in.
    assert_error(world["other_emp"].post(f"{T}/{t['id']}/preview", {}), 404)
    shared = create(me, "S", shared=True)
    assert_error(
        world["emp_other"].post(f"{T}/{shared['id']}/preview", {"application": "app1"}), 404
    )
    assert_error(world["emp_other"].post(f"{T}/{shared['id']}/preview", {"job": "nope"}), 404)


def test_preview_of_a_conversation_one_is_not_in_is_404(world: World) -> None:
    t = create(world["emp_other"], shared=True)
    conv = start(world["emp_team"], "application", application="app1")
    assert_error(world["emp_other"].post(f"{T}/{t['id']}/preview", {"conversation": conv}), 404)
    assert_error(world["emp_other"].post(f"{T}/{t['id']}/preview", {"conversation": 0}), 422)


# --- sending from a template --------------------------------------------------------------------


def send(who: As, conv: int, **payload: Any) -> Any:
    return who.post(f"/api/v1/conversations/{conv}/messages", payload)


def test_send_with_a_template_fills_the_body(world: World) -> None:
    me = world["emp_team"]
    t = create(me, text="Hi {{candidate.first_name}}, {{sender.first_name}} here.")
    conv = start(me, "application", application="app1")
    message = sent(send(me, conv, template=t["id"]))
    assert message["body"] == "Hi Carla, Tess here."
    assert message["subject"] is None
    seen = body(world["cand"].messages(conv), 200)["items"]
    assert [m["body"] for m in seen] == ["Hi Carla, Tess here."]


def test_send_missing_a_value_is_422_naming_it_and_sends_nothing(world: World) -> None:
    me = world["emp_team"]
    t = create(me, text="Hi {{candidate.first_name}}")
    conv = start(me, "job_partners", job="job1")
    error = assert_error(send(me, conv, template=t["id"]), 422, "invalid")
    assert "candidate.first_name" in error["fields"]
    assert "candidate.first_name" in error["fields"]["template"]
    assert "candidate.first_name" in error["message"]
    assert body(me.messages(conv), 200)["items"] == []
    # With a fallback it goes.
    fallback = create(me, "F", text="Hi {{candidate.first_name | everyone}}")
    assert sent(send(me, conv, template=fallback["id"]))["body"] == "Hi everyone"


def test_an_explicit_body_overrides_the_template(world: World) -> None:
    me = world["emp_team"]
    t = create(me, text="Hi {{candidate.first_name}}")
    conv = start(me, "job_partners", job="job1")  # no candidate: the edit is what goes
    assert sent(send(me, conv, template=t["id"], body="Edited by me"))["body"] == "Edited by me"


def test_email_template_subject(world: World) -> None:
    me = world["emp_team"]
    t = create(me, text="Hi {{candidate.first_name}}", subject="Your {{job.title}} application")
    conv = start(me, "application", application="app1")
    message = sent(send(me, conv, template=t["id"], channel="email"))
    assert (message["subject"], message["body"]) == (
        "Your Registered Nurse application",
        "Hi Carla",
    )
    own = sent(send(me, conv, template=t["id"], channel="email", subject="Mine"))
    assert own["subject"] == "Mine"
    # In the app a message has no subject: the template's is not put on it.
    assert sent(send(me, conv, template=t["id"]))["subject"] is None


def test_a_template_one_cannot_use_or_deleted_is_422_template(world: World) -> None:
    me = world["emp_team"]
    conv = start(me, "application", application="app1")
    t = create(world["emp_other"], "Private")
    assert_error(send(me, conv, template=t["id"]), 422, fields={"template"})
    shared = create(me, "Shared", shared=True)
    assert world["emp_admin"].delete(f"{T}/{shared['id']}").status_code == 204
    assert_error(send(me, conv, template=shared["id"]), 422, fields={"template"})
    assert body(me.messages(conv), 200)["items"] == []
    # A conversation the sender is not in stays a 404 whatever the template.
    other = create(world["other_emp"], "Globex")
    assert_error(send(world["other_emp"], conv, template=other["id"]), 404)


def test_a_retried_template_send_is_stored_once(world: World) -> None:
    me = world["emp_team"]
    t = create(me, text="Hi {{candidate.first_name}}")
    conv = start(me, "application", application="app1")
    first = sent(send(me, conv, template=t["id"], idempotency_key="k1"))
    again = send(me, conv, template=t["id"], idempotency_key="k1")
    assert again.status_code == 201 and again.json()["id"] == first["id"]
    assert len(body(me.messages(conv), 200)["items"]) == 1


def test_openapi_describes_templates(world: World) -> None:
    spec = body(world["emp_team"].get("/openapi.json"), 200)
    for path in (T, f"{T}/{{template_id}}", f"{T}/{{template_id}}/preview"):
        assert path in spec["paths"]
    assert spec["components"]["schemas"]["TemplateOut"]["properties"]["author"]["description"]
