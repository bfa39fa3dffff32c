"""ORM objects read by one prepared statement instead of the ORM's loading.

Most signed-in requests start by loading their caller's row (``jobchat.auth.deps.Caller``), and
every call on a conversation loads the conversation and the caller's member row
(``jobchat.access``). ``Session.get`` spent about 400 us of Python on one row on this project's
benchmark machine (the statement's cache key, the ORM's execution and result machinery, the
identity map) against 20 us for the statement itself: a tenth of an inbox page, a tenth of a
send. Here the statement runs on the driver's cursor (``jobchat.db.prepared``, which converts
each value as its column's type does), and each object is made as loading makes it: its
attributes straight into its ``__dict__`` (no change for a flush to write), then persistent in
the session, exactly as the ORM would have left it: the columns selected loaded, the rest
(relationships, deferred columns) loaded when first read, and an object already in the
session's identity map returned as it is rather than made twice.

Joining the session is done as the ORM's loading does it, not by ``make_transient_to_detached``
and ``Session.add``: those work out anew for each object which attributes it lacks, and ``add``
walks every relationship of its mapper for the save-update cascade (a loaded object's are
all unloaded: nothing to cascade to), 22-34 us an object against 8-10 on the sixteenth stop's
machine; a send makes three, and its new message (jobchat.messages.store). That takes one of
SQLAlchemy's private names, ``Session._update_impl`` (pinned in pyproject.toml at 2.1.9;
tests/test_loaded.py holds the objects to ``Session.get``'s).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import bindparam, inspect, select
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.sql.elements import ColumnElement

from jobchat.db.prepared import Prepared

T = TypeVar("T")


class Loader(Generic[T]):
    """How a model's row is read: ``columns`` to select (its column attributes that are loaded
    at once, plus the deferred ones named in ``undefer``), and ``join`` to make the object from
    those columns' values."""

    __slots__ = ("_keys", "_mapper", "_new", "_primary", "_unloaded", "columns")

    def __init__(self, model: type[T], *, undefer: Sequence[str] = ()) -> None:
        mapper = inspect(model)
        self._mapper: Mapper[T] = mapper
        self._keys: tuple[str, ...] = ()
        self.columns: list[ColumnElement[Any]] = []
        for attr in mapper.column_attrs:
            if attr.deferred and attr.key not in undefer:
                continue
            if len(attr.columns) != 1:
                raise ValueError(f"{model.__name__}.{attr.key} is not one column")
            column = attr.columns[0]
            # A column_property's expression (a subquery) is selected under its attribute's name.
            self.columns.append(column if column.key == attr.key else column.label(attr.key))
            self._keys += (attr.key,)
        self._primary = tuple(
            self._keys.index(mapper.get_property_by_column(c).key) for c in mapper.primary_key
        )
        self._new = mapper.class_manager.new_instance
        # The column attributes left out (deferred): expired, so that reading one loads it, as
        # make_transient_to_detached would leave them. Relationships load when read anyway.
        self._unloaded = frozenset(
            attr.key for attr in mapper.column_attrs if attr.key not in self._keys
        )

    @property
    def width(self) -> int:
        return len(self._keys)

    @property
    def keys(self) -> tuple[str, ...]:
        """The column attributes' names, in ``columns``' order."""
        return self._keys

    def find(self, session: Session, primary_key: tuple[Any, ...]) -> T | None:
        """The object with this primary key if ``session`` has it already."""
        found: T | None = session.identity_map.get(
            self._mapper.identity_key_from_primary_key(primary_key)
        )
        return found

    def join(self, session: Session, values: Sequence[Any]) -> T:
        """The object whose columns' values are ``values`` (in ``columns``' order), persistent in
        ``session``; the one the session already has, if it has it."""
        found = self.find(session, tuple(values[at] for at in self._primary))
        return found if found is not None else self.make(session, values)

    def make(self, session: Session, values: Sequence[Any]) -> T:
        """A new object of these values, persistent in ``session`` (which has none by its key)."""
        obj: T = self._new()
        # Set in its __dict__, its values are its loaded ones, with no history for a flush.
        obj.__dict__.update(zip(self._keys, values, strict=True))
        state = instance_state(obj)
        state.key = self._mapper.identity_key_from_primary_key(
            tuple(values[at] for at in self._primary)
        )
        if self._unloaded:
            state.expired_attributes.update(self._unloaded)
        # Persistent in the session (its identity map), as Session.add would make it, less the
        # cascade.
        session._update_impl(state)
        return obj


class ByKey(Generic[T]):
    """``ByKey(Model).get(session, id)``: as ``session.get(Model, id)``, for a model whose
    primary key is one column."""

    __slots__ = ("_loaded", "_select")

    def __init__(self, model: type[T]) -> None:
        self._loaded = Loader(model)
        (key,) = inspect(model).primary_key
        self._select = Prepared(select(*self._loaded.columns).where(key == bindparam("by_key")))

    def get(self, session: Session, ident: int) -> T | None:
        found = self._loaded.find(session, (ident,))
        if found is not None:
            return found
        rows = self._select.run(session.connection(), {"by_key": ident}).rows
        # Looked up in the identity map just above: made without asking again.
        return self._loaded.make(session, rows[0]) if rows else None
