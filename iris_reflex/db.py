"""Database engine and sessions for the configured URL (SQLite default, PostgreSQL in production).

Services receive a ``Session`` and own their transaction; callers open one with
``session_scope()``. Engines are cached per URL so tests can point at several databases.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Insert, Select, Update, event
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.exc import DisconnectionError, MultipleResultsFound, NoResultFound
from sqlalchemy.sql.compiler import SQLCompiler
from sqlmodel import Session, create_engine

from iris_reflex.settings import get_settings

P = ParamSpec("P")
T = TypeVar("T")


def normalize_url(url: str) -> str:
    """Use psycopg 3 for a bare ``postgresql://`` URL (psycopg2 is not installed)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def create_private_sqlite_file(url: str) -> None:
    """Create a SQLite database file as an empty 0600 file before SQLite opens it.

    SQLite creates a missing database with the process umask (0644: every local user could
    read every message); it creates the ``-wal`` and ``-shm`` files with the mode of the
    database file, so they are private too.
    """
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except (FileExistsError, FileNotFoundError):
        pass  # already there (its mode is the operator's), or no such folder (SQLite says so)


@functools.cache
def engine_for(url: str) -> Engine:
    """A pooled engine for ``url``; SQLite gets foreign keys, WAL and a busy timeout."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        create_private_sqlite_file(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # A deleted message's text is overwritten with zeros in the file, not just
            # unlinked from the b-tree (``forget_deleted`` then clears the WAL's old copies).
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        return engine
    # The pool covers the requests and pushes one process runs at once (16 API clients kept
    # 16 connections busy): a connection opened past it is closed when returned, and opening
    # one costs PostgreSQL a process (pool_size 10 opened 17 a second at 16 clients).
    engine = create_engine(url, pool_size=get_settings().db_pool_size, max_overflow=10)
    _ping_when_idle(engine)
    return engine


# A connection back in the pool for less than this is used without a ping first.
PING_AFTER_IDLE_SECONDS = 5.0


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it sat idle for a while.

    ``pool_pre_ping`` pinged on every checkout: one more round trip for every transaction,
    3 of the 15 statements a delivered message cost PostgreSQL (its log, 2026-11-30). A
    connection returned moments ago is alive as far as a ping could tell; one that died
    meanwhile (the server restarted) fails its statement, SQLAlchemy then replaces every
    connection older than that failure, and the caller sees the error as for any database
    failure: nothing half-done is committed. An idle one, the usual victim of a restart or a
    dropped link, is still pinged and silently replaced, as before.
    """

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is not None and time.monotonic() - returned < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise DisconnectionError("the pooled connection is gone") from error


def forget_deleted(*, vacuum: bool = False) -> None:
    """After deleting messages: leave no older copy of them in the database's files.

    SQLite (``secure_delete`` zeroes the pages themselves): the write-ahead log still holds
    the pages as they were before the delete until a checkpoint, so it is checkpointed and
    truncated to nothing (a reader still open may hold the truncation off until next time).
    PostgreSQL keeps dead rows in table pages until VACUUM and old pages in its WAL until
    the segment is recycled; with ``vacuum`` the message tables are vacuumed (the sweep does
    it at most hourly: README, "Timed deletion").
    """
    engine = get_engine()
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    elif vacuum:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM messages, attachments")


def get_engine() -> Engine:
    """The engine for the configured database."""
    return engine_for(get_settings().database_url)


def new_session() -> Session:
    """A session on the configured database (it connects at its first statement)."""
    return Session(get_engine(), expire_on_commit=False)


@functools.cache
def _autocommit_engine(url: str) -> Engine:
    """The engine of ``url`` (same pool) with each statement its own transaction."""
    return engine_for(url).execution_options(isolation_level="AUTOCOMMIT")


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session for one action; services commit, anything unfinished is rolled back."""
    with new_session() as session:
        yield session


async def in_session(
    fn: Callable[Concatenate[Session, P], T], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """``fn(session, ...)`` in a worker thread with a session of its own.

    Database drivers block; on the event loop one query would stall every tab connected to
    this worker. Callers on the loop (Reflex handlers, live pushes) await this instead, and
    only the returned plain data crosses back.
    """

    def run() -> T:
        with session_scope() as session:
            return fn(session, *args, **kwargs)

    return await asyncio.to_thread(run)


async def in_one_statement(
    fn: Callable[Concatenate[Session, P], T], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """``in_session`` for one statement: a read (a session check before a push), or a
    write of one statement that needs nothing else to be atomic with it (a message sent on
    its known route, ``sending.send_on_known_route``).

    Each statement is its own transaction: no ``BEGIN`` and ``COMMIT`` around it, two of
    the three round trips such a statement cost. Never for anything that reads twice and
    needs both reads to agree, or writes twice and needs both writes or neither.
    """

    def run() -> T:
        with Session(_autocommit_engine(get_settings().database_url)) as session:
            return fn(session, *args, **kwargs)

    return await asyncio.to_thread(run)


class HotResult:
    """The rows of a ``HotStatement``, read like the few ``Result`` methods the hot path uses."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def all(self) -> list[Any]:
        return self._rows

    def first(self) -> Any | None:
        return self._rows[0] if self._rows else None

    def one(self) -> Any:
        if len(self._rows) != 1:
            raise NoResultFound if not self._rows else MultipleResultsFound
        return self._rows[0]

    def scalar_one(self) -> Any:
        return self.one()[0]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positions: tuple[str, ...] | None  # the parameters' order for a positional driver
    compiled: SQLCompiler
    binds: dict[str, Callable[[Any], Any]]
    results: tuple[Callable[[Any], Any] | None, ...]
    row: type[tuple[Any, ...]]


class HotStatement:
    """A fixed Core statement of the live path, run straight on the session's connection.

    Per message the live path runs a handful of one-row statements, and SQLAlchemy's
    machinery around each (the ORM session's ``execute``, the execution context, the result
    object) cost twice the CPU of psycopg sending it and reading the answer (py-spy on a busy
    worker: 16 % of its samples against 7 %). A hot statement is compiled once per dialect and
    set of parameters, exactly as ``session.execute`` would compile it, and runs on the same
    DBAPI connection, in the same transaction; SQLAlchemy's own bind and result processors
    still convert the values (SQLite keeps datetimes as text), so its rows read the same as
    ``session.execute``'s (attribute or tuple access). While anything listens to the
    engine's statements (a test counting them, a tracer), it goes through ``session.execute``
    so that they see it.
    """

    def __init__(self, statement: Select[*tuple[Any, ...]] | Insert | Update) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def _compile(self, dialect: Dialect, keys: tuple[str, ...]) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect, column_keys=list(keys))
        assert isinstance(compiled, SQLCompiler)
        if (
            compiled.literal_execute_params
            or compiled.post_compile_params
            or compiled.insert_prefetch
            or compiled.update_prefetch
            or compiled.escaped_bind_names
        ):
            # What SQLAlchemy's execution context would add at execution time.
            raise TypeError("a hot statement takes every value as a plain parameter")
        columns = getattr(compiled, "_result_columns", [])
        names = [entry.keyname for entry in columns]
        return _Compiled(
            sql=compiled.string,
            positions=tuple(compiled.positiontup or ()) if compiled.positional else None,
            compiled=compiled,
            binds=dict(compiled._bind_processors),  # type: ignore[arg-type]
            results=tuple(entry.type._cached_result_processor(dialect, None) for entry in columns),
            row=namedtuple("HotRow", names, rename=True),  # noqa: PYI024
        )

    def run(self, session: Session, params: Mapping[str, Any]) -> HotResult:
        connection = session.connection()
        dispatch = connection.dispatch
        if dispatch.before_cursor_execute or dispatch.after_cursor_execute:
            return HotResult(list(session.execute(self.statement, dict(params)).all()))
        dialect = connection.dialect
        keys = tuple(params)
        found = self._compiled.get((dialect.name, keys))
        if found is None:
            found = self._compiled[(dialect.name, keys)] = self._compile(dialect, keys)
        values = found.compiled.construct_params(params)
        assert values is not None
        for name, process in found.binds.items():
            if name in values:
                values[name] = process(values[name])
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if found.positions is None:
                cursor.execute(found.sql, values)
            else:
                cursor.execute(found.sql, tuple(values[name] for name in found.positions))
            raw = cursor.fetchall() if cursor.description else []
        finally:
            cursor.close()
        results, make = found.results, found.row._make  # type: ignore[attr-defined]
        if any(results):
            raw = [
                [v if f is None else f(v) for v, f in zip(row, results, strict=True)] for row in raw
            ]
        return HotResult([make(row) for row in raw])
