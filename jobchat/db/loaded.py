"""An object by its primary key, read by one prepared statement instead of the ORM's loading.

Every signed-in request starts by loading its caller's row (``jobchat.auth.deps.Caller``), and
``Session.get`` spent about 400 us of Python on it on this project's benchmark machine (the
statement's cache key, the ORM's execution and result machinery, the identity map) against
20 us for the statement itself: a tenth of an inbox page. ``ByKey`` runs the statement on the
driver's cursor (``jobchat.db.prepared``, which converts each value as its column's type
does), fills a new instance's attributes as loading does (straight into its ``__dict__``, so
there is no change for a flush to write), and makes it a persistent object of the session, as
``Session.get`` would have left it: every column loaded, relationships loaded when first read.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from sqlalchemy import bindparam, inspect, select
from sqlalchemy.orm import Mapper, Session, make_transient_to_detached
from sqlalchemy.schema import Column

from jobchat.db.prepared import Prepared

T = TypeVar("T")


class ByKey(Generic[T]):
    """``ByKey(Model).get(session, id)``: as ``session.get(Model, id)``, for a model whose
    primary key is one column and whose attributes are all plain columns loaded at once."""

    __slots__ = ("_keys", "_mapper", "_new", "_select")

    def __init__(self, model: type[T]) -> None:
        mapper = inspect(model)
        columns: list[Column[Any]] = []
        for attr in mapper.column_attrs:
            (column,) = attr.columns
            if attr.deferred or not isinstance(column, Column):
                raise ValueError(f"{model.__name__}.{attr.key} is not a plain column")
            columns.append(column)
        (key,) = mapper.primary_key
        self._mapper: Mapper[T] = mapper
        self._keys = tuple(attr.key for attr in mapper.column_attrs)
        self._new = mapper.class_manager.new_instance
        self._select = Prepared(select(*columns).where(key == bindparam("by_key")))

    def get(self, session: Session, ident: int) -> T | None:
        found = session.identity_map.get(self._mapper.identity_key_from_primary_key((ident,)))
        if found is not None:
            return found
        rows = self._select.run(session.connection(), {"by_key": ident}).rows
        if not rows:
            return None
        obj: T = self._new()
        obj.__dict__.update(zip(self._keys, rows[0], strict=True))
        # Its values are now its loaded ones, with no history; then it joins the session.
        make_transient_to_detached(obj)
        session.add(obj)
        return obj
