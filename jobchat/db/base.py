"""The declarative base and the column types every model shares."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, MetaData
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.processors import str_to_datetime
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

# Named constraints, so Alembic migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL; INTEGER on SQLite, where only "INTEGER PRIMARY KEY" is the rowid alias
# that autoincrements.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, whatever the database keeps.

    SQLite has no time zones; storing naive UTC there and re-attaching UTC on the way out keeps
    comparisons and ISO output identical on both databases.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, the value as SQLAlchemy's SQLite dialect writes a naive UTC datetime, in
        one step: ``process_bind_param`` then the dialect's ``%``-formatting of seven fields
        took 6.4 us a value on the sixteenth stop's machine, ``isoformat`` 2.4, and a send
        binds some eight of them."""
        if dialect.name == "sqlite":
            return _sqlite_text
        return super().bind_processor(dialect)

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[Any], datetime | None]:
        """The database's value as an aware UTC datetime, in one step rather than the dialect's
        conversion followed by a ``process_result_value``: a page of 50 conversations reads some
        300 of them, and the two steps (SQLAlchemy's string parsing, then
        ``replace(tzinfo=UTC)``, 1.7 us alone) were a tenth of the inbox's CPU on SQLite."""
        if dialect.name == "sqlite":
            return _sqlite_utc
        return _aware_utc


def _sqlite_text(value: datetime | None) -> str | None:
    # "YYYY-MM-DD HH:MM:SS.ffffff" always (SQLite compares the text: the dialect's storage
    # format, which keeps the microseconds when they are 0, where isoformat leaves them out).
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    text = value.replace(tzinfo=None).isoformat(" ")
    return text if value.microsecond else text + ".000000"


def _sqlite_utc(value: Any) -> datetime | None:
    # SQLAlchemy writes naive UTC as "YYYY-MM-DD HH:MM:SS[.ffffff]": parsed with the offset
    # appended, it comes back aware, with datetime.UTC as its tzinfo.
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value + "+00:00")
    except (TypeError, ValueError):
        # Not that form: as SQLAlchemy reads it (or fails to).
        return _aware_utc(str_to_datetime(value))


def _aware_utc(value: Any) -> datetime | None:
    # psycopg gives timestamptz in the connection's time zone, UTC's own tzinfo when that is
    # "UTC" (jobchat.db.engine sets it): nothing to change then. A naive value is UTC.
    if value is None or value.tzinfo is UTC:
        return value  # type: ignore[no-any-return]
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
