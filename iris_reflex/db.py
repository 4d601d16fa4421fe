"""Database engine and sessions for the configured URL (SQLite default, PostgreSQL in production).

Services receive a ``Session`` and own their transaction; callers open one with
``session_scope()``. Engines are cached per URL so tests can point at several databases.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from iris_reflex.settings import get_settings

P = ParamSpec("P")
T = TypeVar("T")


def normalize_url(url: str) -> str:
    """Use psycopg 3 for a bare ``postgresql://`` URL (psycopg2 is not installed)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


@functools.cache
def engine_for(url: str) -> Engine:
    """A pooled engine for ``url``; SQLite gets foreign keys, WAL and a busy timeout."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def get_engine() -> Engine:
    """The engine for the configured database."""
    return engine_for(get_settings().database_url)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session for one action; services commit, anything unfinished is rolled back."""
    with Session(get_engine(), expire_on_commit=False) as session:
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
