"""tests/world_rows.py: the cast written back from a build's rows is the cast that build made,
row for row, with ids going on where the build left them, and every role signed in."""

from __future__ import annotations

from sqlalchemy import text

from jobchat.db.engine import Database
from tests.support import Api, World
from tests.world_rows import WorldRows, _read, _tables


def _empty(db: Database) -> None:
    """Every row the cast added gone, and PostgreSQL's sequences back to their start."""
    with db.engine.begin() as connection:
        for table in reversed(_tables(connection)):
            if table not in ("server_secrets", "sqlite_sequence") and not table.startswith(
                "message_search"
            ):
                connection.exec_driver_sql(f'DELETE FROM "{table}"')
        if not db.is_sqlite:
            connection.execute(
                text(
                    "SELECT setval(CAST(quote_ident(sequencename) AS regclass), 1, false)"
                    " FROM pg_sequences WHERE schemaname = current_schema()"
                )
            )


def _signed_in(world: World) -> dict[str, str]:
    """Each role's own id, as the API tells it to their token."""
    ids = {}
    for role, who in world.users.items():
        response = who.get("/api/v1/me")
        assert response.status_code == 200, response.text
        ids[role] = response.json()["id"]
    return ids


def test_the_rows_written_back_are_the_rows_built(api: Api, db: Database) -> None:
    rows = WorldRows()
    built = rows.world(api, db, "inputs")
    as_built = _read(db)
    ids = _signed_in(built)
    _empty(db)
    assert _read(db) != as_built

    written = rows.world(api, db, "inputs")
    assert _read(db) == as_built
    assert {role: who.token for role, who in written.users.items()} == {
        role: who.token for role, who in built.users.items()
    }
    assert _signed_in(written) == ids
    # Ids go on after the cast's, as they would after a build (on PostgreSQL a sequence left at
    # its start would hand out an id the cast has).
    api.org("after-the-cast", "After", "employer")
    with db.engine.connect() as connection:
        rows_of = connection.exec_driver_sql("SELECT ext_id, id FROM organizations")
        ids_of = {str(ext_id): int(id) for ext_id, id in rows_of}
    assert ids_of["after-the-cast"] == max(ids_of.values()) == len(ids_of)


def test_other_inputs_build_again(api: Api, db: Database) -> None:
    rows = WorldRows()
    rows.world(api, db, "inputs")
    _empty(db)
    rebuilt = rows.world(api, db, "other inputs")
    assert _signed_in(rebuilt).keys() == rebuilt.users.keys()
