"""``in_ids``: a list of ids bound as one parameter selects what an ``IN`` list would, on the
database the suite runs on (SQLite's json_each, PostgreSQL's ANY of an array)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from jobchat.db.engine import Database
from jobchat.db.id_lists import in_ids
from jobchat.directory.models import User, UserKind


def _users(db: Database, n: int) -> list[int]:
    with db.write() as s:
        users = [
            User(
                ext_id=f"u{i}", name=f"User {i}", email=f"u{i}@example.com", kind=UserKind.candidate
            )
            for i in range(n)
        ]
        s.add_all(users)
        s.flush()
        return [u.id for u in users]


_PICK = select(User.id).where(in_ids(User.id, "ids")).order_by(User.id)


def test_the_ids_listed_and_only_those(db: Database) -> None:
    ids = _users(db, 30)
    with db.read() as s:
        conn = s.connection()
        assert conn.execute(_PICK, {"ids": ids[::3]}).scalars().all() == ids[::3]
        # Duplicates, any order, ids that do not exist: as IN would have them.
        wanted = [ids[5], ids[1], ids[5], 10**12]
        assert conn.execute(_PICK, {"ids": wanted}).scalars().all() == [ids[1], ids[5]]
        assert conn.execute(_PICK, {"ids": []}).scalars().all() == []


def test_a_long_list_is_one_parameter(db: Database) -> None:
    # Past SQLite's old 999 and psycopg's 50-parameter cache: still one placeholder.
    ids = _users(db, 5)
    many = list(range(10**9, 10**9 + 5000)) + ids
    with db.read() as s:
        conn = s.connection()
        assert conn.execute(_PICK, {"ids": many}).scalars().all() == ids
    compiled = str(_PICK.compile(dialect=db.engine.dialect))
    assert compiled.count("?") + compiled.count("%(ids)s") == 1


def test_only_integers_reach_the_database(db: Database) -> None:
    with db.read() as s, pytest.raises(StatementError):
        s.connection().execute(_PICK, {"ids": ["1) OR (1=1"]})
