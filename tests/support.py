"""Test helpers: an API client that speaks as the integration or as one user, and a world.

``build_world`` creates, through the integration API, the cast the authorization matrix and the
scenarios use (see ``World``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi.testclient import TestClient

API_KEY = "test-integration-key"


class As:
    """Requests made with one bearer token."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str, **params: Any) -> httpx.Response:
        response: httpx.Response = self.client.get(
            path, params=params or None, headers=self.headers
        )
        return response

    def post(self, path: str, json: Any = None) -> httpx.Response:
        response: httpx.Response = self.client.post(path, json=json, headers=self.headers)
        return response

    def put(self, path: str, json: Any = None) -> httpx.Response:
        response: httpx.Response = self.client.put(path, json=json, headers=self.headers)
        return response

    def patch(self, path: str, json: Any = None) -> httpx.Response:
        response: httpx.Response = self.client.patch(path, json=json, headers=self.headers)
        return response

    def delete(self, path: str, **params: Any) -> httpx.Response:
        response: httpx.Response = self.client.delete(
            path, params=params or None, headers=self.headers
        )
        return response

    # Conveniences for the user endpoints.
    def start(self, kind: str, **refs: str) -> httpx.Response:
        return self.post("/api/v1/conversations", {"kind": kind, **refs})

    def send(self, conversation_id: int, body: str = "Hello", **extra: Any) -> httpx.Response:
        return self.post(
            f"/api/v1/conversations/{conversation_id}/messages", {"body": body, **extra}
        )

    def messages(self, conversation_id: int, **params: Any) -> httpx.Response:
        return self.get(f"/api/v1/conversations/{conversation_id}/messages", **params)

    def inbox(self, **params: Any) -> httpx.Response:
        return self.get("/api/v1/conversations", **params)


class Api:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.integration = As(client, API_KEY)

    def org(self, ext_id: str, name: str, kind: str) -> dict[str, Any]:
        return _ok(
            self.integration.put(f"/api/v1/organizations/{ext_id}", {"name": name, "kind": kind})
        )

    def staff(
        self, ext_id: str, name: str, org: str, role: str = "member", **extra: Any
    ) -> dict[str, Any]:
        body = {"name": name, "email": f"{ext_id}@example.com", "organization": org, "role": role}
        return _ok(self.integration.put(f"/api/v1/users/{ext_id}", body | extra))

    def candidate(self, ext_id: str, name: str, **extra: Any) -> dict[str, Any]:
        body = {"name": name, "email": f"{ext_id}@example.org"}
        return _ok(self.integration.put(f"/api/v1/candidates/{ext_id}", body | extra))

    def job(self, ext_id: str, title: str, employer: str, **extra: Any) -> dict[str, Any]:
        body = {"title": title, "employer": employer}
        return _ok(self.integration.put(f"/api/v1/jobs/{ext_id}", body | extra))

    def application(
        self, ext_id: str, job: str, candidate: str, stage: str, **extra: Any
    ) -> dict[str, Any]:
        body = {"job": job, "candidate": candidate, "stage": stage}
        return _ok(self.integration.put(f"/api/v1/applications/{ext_id}", body | extra))

    def as_staff(self, ext_id: str) -> As:
        token = _ok(self.integration.post(f"/api/v1/users/{ext_id}/tokens"))["token"]
        return As(self.client, token)

    def as_candidate(self, ext_id: str) -> As:
        token = _ok(self.integration.post(f"/api/v1/candidates/{ext_id}/tokens"))["token"]
        return As(self.client, token)


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


@dataclass
class World:
    """The cast, by role name (the authorization matrix's rows).

    - acme (employer) has job ``job1`` with team [emp_team]; its partners are source partner tbb
      and agency hireco. emp_admin is an acme admin; emp_other an acme member off the team.
    - globex is another employer (other_emp).
    - sp_in works for tbb, the source partner of ``cand`` and a partner of job1; sp_out works for
      crs, a source partner with nothing to do with job1 or cand.
    - agency_user works for hireco and submitted application ``app1``; agency_other is a
      colleague at hireco who did not.
    - cand applied to job1 (``app1``, stage offer_accepted, stage owner emp_team); cand2 applied
      to job1 too (``app2``, stage interview) but is another candidate.
    """

    api: Api
    users: dict[str, As] = field(default_factory=dict)

    def __getitem__(self, role: str) -> As:
        return self.users[role]


ROLES = [
    "emp_admin",
    "emp_team",
    "emp_other",
    "other_emp",
    "sp_in",
    "sp_out",
    "agency_user",
    "agency_other",
    "cand",
    "cand2",
]


def build_world(api: Api) -> World:
    api.org("acme", "Acme Health", "employer")
    api.org("globex", "Globex", "employer")
    api.org("tbb", "Talent Beyond Boundaries", "source_partner")
    api.org("crs", "CRS", "source_partner")
    api.org("hireco", "HireCo Recruiting", "agency")

    api.staff("emp_admin", "Ada Admin", "acme", role="admin")
    api.staff("emp_team", "Tess Team", "acme")
    api.staff("emp_other", "Otto Other", "acme")
    api.staff("other_emp", "Gus Globex", "globex", role="admin")
    api.staff("sp_in", "Sam Partner", "tbb")
    api.staff("sp_out", "Cora Outside", "crs")
    api.staff("agency_user", "Aggie Agent", "hireco")
    api.staff("agency_other", "Alex Otheragent", "hireco")

    api.candidate(
        "cand", "Carla Candidate", source_partner="tbb", phone="+14155550123", sms_consent=True
    )
    api.candidate("cand2", "Dan Candidate", source_partner="crs")

    api.job("job1", "Registered Nurse", "acme", team=["emp_team"], partners=["tbb", "hireco"])
    api.application(
        "app1", "job1", "cand", "offer_accepted", stage_owner="emp_team", agency_user="agency_user"
    )
    api.application("app2", "job1", "cand2", "interview")

    world = World(api=api)
    for role in ROLES:
        world.users[role] = (
            api.as_candidate(role) if role.startswith("cand") else api.as_staff(role)
        )
    return world
