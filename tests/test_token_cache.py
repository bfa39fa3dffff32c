"""The in-process memory of user tokens (jobchat.auth.cache) changes no answer: a token that
expires stops working at once, a deleted one within the cache's few seconds, and everything
else is looked up as before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import delete

from jobchat.auth.actions import digest, do_create_credential
from jobchat.auth.cache import TokenCache
from jobchat.auth.models import Credential, CredentialKind
from jobchat.clock import FrozenClock
from jobchat.db.engine import Database
from jobchat.directory.models import User
from tests.support import As, Ticks, World, assert_error, user_id

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_a_remembered_token_is_forgotten_after_the_ttl() -> None:
    ticks = Ticks()
    cache = TokenCache(ttl_seconds=5, monotonic=ticks)
    assert cache.user_id("jct_a", NOW) is None
    cache.remember("jct_a", 7, None, generation=cache.generation)
    assert cache.user_id("jct_a", NOW) == 7
    assert cache.user_id("jct_b", NOW) is None
    ticks.at += 5
    assert cache.user_id("jct_a", NOW) == 7
    ticks.at += 0.1
    assert cache.user_id("jct_a", NOW) is None
    assert cache.user_id("jct_a", NOW) is None


def test_a_remembered_token_still_expires_on_time() -> None:
    cache = TokenCache(monotonic=Ticks())
    cache.remember("jct_a", 7, NOW + timedelta(minutes=1), generation=0)
    assert cache.user_id("jct_a", NOW + timedelta(seconds=59)) == 7
    assert cache.user_id("jct_a", NOW + timedelta(minutes=1)) is None


def test_a_lookup_that_raced_a_revocation_is_not_remembered() -> None:
    """A request read its token from the database just before the token was revoked; the
    revocation's forget_user ran before the request came to remember it. Remembering it then
    would accept the revoked token for the TTL."""
    cache = TokenCache(monotonic=Ticks())
    cache.remember("jct_b", 8, None, generation=cache.generation)
    started = cache.generation  # the racing lookup begins
    cache.forget_user(7)  # a revocation (of anyone) is heard meanwhile
    cache.remember("jct_a", 7, None, generation=started)
    assert cache.user_id("jct_a", NOW) is None
    assert cache.user_id("jct_b", NOW) == 8  # others' entries stay
    cache.remember("jct_a", 7, None, generation=cache.generation)  # a later lookup: fine
    assert cache.user_id("jct_a", NOW) == 7


def test_the_cache_stays_bounded() -> None:
    cache = TokenCache(max_entries=10, monotonic=Ticks())
    for i in range(25):
        cache.remember(f"jct_{i}", i, None, generation=0)
    assert cache.user_id("jct_24", NOW) == 24
    assert cache.user_id("jct_0", NOW) is None
    assert len(cache._entries) <= 10


def test_an_expiring_token_stops_working_at_its_expiry_even_when_remembered(
    world: World, client: TestClient, db: Database, clock: FrozenClock
) -> None:
    with db.write() as session:
        secret = do_create_credential(
            session,
            user=session.get_one(User, user_id(db, "emp_admin")),
            kind=CredentialKind.token,
            now=clock.now(),
            lifetime=timedelta(seconds=30),
        )
    who = As(client, secret)
    assert who.get("/api/v1/me").json()["id"] == "emp_admin"
    clock.advance(seconds=29)
    assert who.get("/api/v1/unread").status_code == 200
    clock.advance(seconds=1)
    assert_error(who.get("/api/v1/me"), 401)
    assert_error(who.get("/api/v1/unread"), 401)


def test_a_deleted_token_stops_working_within_the_ttl(
    world: World, client: TestClient, db: Database, clock: FrozenClock
) -> None:
    who = world["emp_team"]
    assert who.get("/api/v1/me").status_code == 200
    secret = who.headers["Authorization"].removeprefix("Bearer ")
    with db.write() as session:
        session.execute(delete(Credential).where(Credential.secret_hash == digest(secret)))
    state = client.app.state.jobchat  # type: ignore[attr-defined]
    # (The app's clock: tokens expire, JOBCHAT_TOKEN_DAYS after they were issued by it.)
    assert state.tokens.user_id(secret, clock.now()) is not None  # remembered
    state.tokens.ttl_seconds = 0  # as if the few seconds had passed
    assert_error(who.get("/api/v1/me"), 401)
    # The integration key and a session cookie are never taken for a remembered user token.
    assert_error(world.api.integration.get("/api/v1/me"), 403)
