"""A hot path's statements: compiled once for the database's dialect and run on the DBAPI
connection itself.

SQLAlchemy's ``Connection.execute`` does, on every call, work that a fixed statement does not
need: the statement's cache key, the parameters' construction, the result's metadata. For a
one-row statement that work is most of the cost (UserInfo's read: 65 µs through ``execute``,
12 µs here). Type conversions still apply: each parameter's bind processor and each column's
result processor, as SQLAlchemy would run them; a driver's error is raised as SQLAlchemy
raises it (``IntegrityError``, ``OperationalError``…).

A read runs on a connection of its own, outside any transaction (``Database.first``); a write
runs in the caller's, on the connection of its session (:func:`run`, :func:`count`).

>>> from sqlalchemy import Integer, bindparam, select
>>> from tessera.idp.store.database import Database
>>> plus_one = select((bindparam("n", type_=Integer) + 1).label("m"))
>>> Database("sqlite://").first(plus_one, {"n": 41})
Row(m=42)
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import ClauseElement, ColumnElement, Dialect, Insert, bindparam, insert, select
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.orm import Session, class_mapper
from sqlalchemy.sql.compiler import SQLCompiler

if TYPE_CHECKING:
    from .database import Database

Processor = Callable[[Any], Any]
M = TypeVar("M")

# A pyformat statement's placeholders (and its escaped percent signs).
_PYFORMAT = re.compile(r"%\((\w+)\)s|%%")


class PreparedStatement:
    """``statement`` (a SELECT, or an INSERT/UPDATE/DELETE with or without RETURNING)
    compiled once for ``database``."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self._driver_error: type[Exception] = dialect.loaded_dbapi.Error
        if compiled.post_compile_params or any(
            bind.required for bind in compiled.literal_execute_params
        ):
            raise ValueError("a statement with an expanding IN is rendered per call")
        # A literal rendered into the SQL (aggregate_strings' separator) is rendered now.
        required = {name: None for name, bind in compiled.binds.items() if bind.required}
        expanded = compiled.construct_expanded_state(required)
        self._sql = expanded.statement
        # qmark (SQLite) takes a sequence in the order of the placeholders; pyformat
        # (psycopg) takes the mapping.
        self._order: tuple[str, ...] | None = (
            tuple(expanded.positiontup or ()) if compiled.positional else None
        )
        self._names = tuple(expanded.parameters)
        # For libpq itself (.loop_connections): the statement with $1, $2…
        self.numbered: tuple[bytes, tuple[str, ...]] | None = None
        if dialect.paramstyle == "pyformat":
            self.numbered = _numbered(self._sql)
        # A literal in the statement is a bind parameter with its value already given.
        self._given = {
            name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required
        }
        self._binds: dict[str, Processor] = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self._binds[name] = processor
        columns = list(getattr(statement, "exported_columns", ()))
        self._results: list[tuple[int, Processor]] = []
        for index, column in enumerate(columns):
            processor = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if processor is not None:
                self._results.append((index, processor))
        # An unnamed column (count(*)) is reached by position: rename gives it _0, _1…
        names = [str(column.key) for column in columns]
        self._row = namedtuple("Row", names, rename=True)  # type: ignore[misc]
        self.returns_rows = bool(columns)

    def first(self, database: Database, params: Mapping[str, Any]) -> Any | None:
        """The first row for ``params`` (a named tuple of the selected columns), or ``None``,
        read on a connection of ``database``'s own, outside any transaction."""
        arguments = self._arguments(params)
        try:
            with database.raw_connection() as connection:
                return self._execute(connection, arguments)[0]
        except self._driver_error as error:
            raise self.raised(error) from None

    def in_transaction(self, session: Session, params: Mapping[str, Any]) -> tuple[Any | None, int]:
        """Run in ``session``'s transaction (begun here if it was not): the first row (for a
        statement with rows) and the number of rows changed."""
        arguments = self._arguments(params)
        try:
            return self._execute(_driver_connection(session), arguments)
        except self._driver_error as error:
            raise self.raised(error) from None

    def _values(self, params: Mapping[str, Any]) -> dict[str, Any]:
        values = {**self._given, **params}
        for name, processor in self._binds.items():
            values[name] = processor(values[name])
        return values

    def _arguments(self, params: Mapping[str, Any]) -> Any:
        values = self._values(params)
        # Every parameter the statement names (a missing one is a KeyError here, on either
        # driver), and only those.
        if self._order is None:
            return {name: values[name] for name in self._names}
        return [values[name] for name in self._order]

    def in_order(self, params: Mapping[str, Any], order: tuple[str, ...]) -> list[Any]:
        """``params`` (through their bind processors) in ``order``: a numbered statement's
        arguments."""
        values = self._values(params)
        return [values[name] for name in order]

    def _execute(self, connection: Any, arguments: Any) -> tuple[Any | None, int]:
        cursor = connection.cursor()
        try:
            cursor.execute(self._sql, arguments)
            row = cursor.fetchone() if self.returns_rows else None
            changed = int(cursor.rowcount)
        finally:
            cursor.close()
        return self.shaped(row), changed

    def shaped(self, row: Any) -> Any | None:
        """A driver's row as a named tuple, each column through its result processor."""
        if row is None:
            return None
        if self._results:
            row = list(row)
            for index, processor in self._results:
                row[index] = processor(row[index])
        return self._row(*row)

    def raised(self, error: Exception) -> StatementError:
        """The driver's ``error`` as SQLAlchemy would raise it: callers handle its errors
        (``OperationalError``: the database is away), whatever the driver."""
        return DBAPIError.instance(self._sql, None, error, self._driver_error)


# A write to make: a statement and its parameters.
Write = tuple[PreparedStatement, Mapping[str, Any]]


def _numbered(sql: str) -> tuple[bytes, tuple[str, ...]]:
    """A pyformat statement (``%(name)s``, ``%%``) in libpq's numbered form (``$1``, ``%``),
    with the names of its parameters in number order.

    >>> _numbered("SELECT %(a)s, %(b)s || '%%' WHERE x = %(a)s")
    (b"SELECT $1, $2 || '%' WHERE x = $1", ('a', 'b'))
    """
    order: dict[str, int] = {}

    def numbered(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        return f"${order.setdefault(name, len(order) + 1)}"

    return _PYFORMAT.sub(numbered, sql).encode(), tuple(order)


_DRIVER = "tessera.driver_connection"


def _driver_connection(session: Session) -> Any:
    """The DBAPI connection of ``session``'s transaction (begun here if it was not), found
    once per transaction: asking the session each time costs more than the statement."""
    transaction = session.get_transaction()
    known = session.info.get(_DRIVER)
    if transaction is not None and known is not None and known[0] is transaction:
        return known[1]
    connection = session.connection().connection.driver_connection
    session.info[_DRIVER] = (session.get_transaction(), connection)
    return connection


_PREPARED: WeakKeyDictionary[Dialect, dict[ClauseElement, PreparedStatement]] = WeakKeyDictionary()


def prepared(statement: ClauseElement, dialect: Dialect) -> PreparedStatement:
    """``statement`` compiled for ``dialect``, once: the same statement object is compiled on
    its first use and found on the next."""
    known = _PREPARED.get(dialect)
    if known is None:
        known = _PREPARED[dialect] = {}
    found = known.get(statement)
    if found is None:
        found = known[statement] = PreparedStatement(statement, dialect)
    return found


def run(session: Session, statement: ClauseElement, params: Mapping[str, Any]) -> Any | None:
    """Run ``statement`` in ``session``'s transaction: the first row of a statement with rows
    (a SELECT, a RETURNING), else ``None``.

    >>> from sqlalchemy import text
    >>> from tessera.idp.store.database import Database
    >>> from tessera.idp.store.models import Tenant
    >>> database = Database("sqlite://"); database.upgrade()
    >>> add = Tenant.__table__.insert().returning(Tenant.id)
    >>> acme = {"id": "acme", "name": "Acme", "mfa_policy": "optional", "created_at": 0}
    >>> with database.session() as session:
    ...     run(session, add, acme)
    Row(id='acme')
    """
    return prepared(statement, session.get_bind().dialect).in_transaction(session, params)[0]


def run_all(
    session: Session, statements: Iterable[tuple[ClauseElement, Mapping[str, Any]]]
) -> None:
    """Run each of ``statements`` (with its parameters) in ``session``'s transaction, after
    what the session holds is flushed (a row they refer to is written first)."""
    session.flush()
    for statement, params in statements:
        run(session, statement, params)


_ONLY_IF: dict[tuple[Any, tuple[str, ...], Any], Insert] = {}


def only_if(statement: Insert, names: Iterable[str], condition: ColumnElement[bool]) -> Insert:
    """``statement``'s row (the columns ``names``, bound by their names) inserted only when
    ``condition`` holds — in the same statement, so in the same transaction as what the
    condition looks at. Made once per statement, names and condition (a statement prepared
    once must be the same object each time).

    >>> from sqlalchemy import bindparam
    >>> from tessera.idp.store.models import Tenant
    >>> table = Tenant.__table__
    >>> add = only_if(table.insert(), ("id", "name"), bindparam("go") == 1)
    >>> print(add)  # doctest: +NORMALIZE_WHITESPACE
    INSERT INTO tenants (id, name) SELECT :id AS anon_1, :name AS anon_2 WHERE :go = :param_1
    """
    key = (statement, tuple(names), condition)
    known = _ONLY_IF.get(key)
    if known is None:
        table = statement.table
        columns = [bindparam(name, type_=table.c[name].type) for name in key[1]]
        known = _ONLY_IF[key] = insert(table).from_select(
            list(key[1]), select(*columns).where(condition), include_defaults=False
        )
    return known


def count(session: Session, statement: ClauseElement, params: Mapping[str, Any]) -> int:
    """Run ``statement`` in ``session``'s transaction; the number of rows it changed."""
    return prepared(statement, session.get_bind().dialect).in_transaction(session, params)[1]


def detached(model: type[M], row: Any, columns: tuple[str, ...] | None = None) -> M:
    """An object of the mapped ``model`` holding a prepared ``row``'s columns, outside any
    session (read-only by use), built without the ORM's per-attribute events: a tenth of
    what ``model(**values)`` costs, on paths that read one row per request. ``columns``: only
    these of the row's columns (a row that also read another table's).

    >>> from tessera.idp.store.models import Tenant
    >>> from collections import namedtuple
    >>> acme = detached(Tenant, namedtuple("Row", "id name")("acme", "Acme"))
    >>> acme.name, type(acme).__name__
    ('Acme', 'Tenant')
    """
    instance: M = class_mapper(model).class_manager.new_instance()
    values = row._asdict()
    instance.__dict__.update(values if columns is None else {key: values[key] for key in columns})
    return instance
