from tests.support import World


def test_employer_and_candidate_talk(world: World) -> None:
    r = world["emp_team"].start("application", application="app1")
    assert r.status_code == 201, r.text
    conv = r.json()
    assert {m["id"] for m in conv["members"]} == {"emp_admin", "emp_team", "cand"}
    r = world["emp_team"].send(conv["id"], "Welcome!")
    assert r.status_code == 201, r.text
    inbox = world["cand"].inbox().json()
    assert inbox["items"][0]["unread_count"] == 1
    assert world["cand"].get("/api/v1/unread").json() == {"conversations": 1, "messages": 1}
