"""The engine's pool on a real PostgreSQL and SQLite: pings only for idle connections, and
reads of one statement without a transaction around them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from iris_reflex import db
from iris_reflex.settings import get_settings

from .conftest import create_database, truncate_all


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, drop = create_database("postgresql", tmp_path_factory.mktemp("db"))
    yield url
    drop()


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch, postgres_url: str) -> list[Any]:
    """The connections the pool pinged before handing them out, in order."""
    engine = db.engine_for(postgres_url)
    engine.dispose()
    seen: list[Any] = []
    real_ping = engine.dialect.do_ping

    def counting_ping(dbapi_connection: Any) -> bool:
        seen.append(dbapi_connection)
        return real_ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counting_ping)
    return seen


def _backend_pid(url: str) -> int:
    with db.engine_for(url).connect() as connection:
        return int(connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_back_in_the_pool_moments_ago_is_used_without_a_ping(
    postgres_url: str, pings: list[Any]
) -> None:
    first = _backend_pid(postgres_url)  # a new connection: pinged once
    assert _backend_pid(postgres_url) == first
    assert _backend_pid(postgres_url) == first
    assert len(pings) == 1


def test_an_idle_connection_that_died_is_replaced_before_use(
    postgres_url: str, pings: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server dropped it while it sat in the pool (a restart, a dropped link): the ping
    finds out, and the caller gets a working connection, not an error."""
    dead = _backend_pid(postgres_url)
    admin = sa.create_engine(db.normalize_url(postgres_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": dead})
    admin.dispose()
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # it has now been idle long enough

    assert _backend_pid(postgres_url) not in (dead, 0)
    assert len(pings) >= 2


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_one_statement_read_runs_outside_a_transaction(
    kind: str, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, drop = create_database(kind, tmp_path_factory.mktemp("db"))
    monkeypatch.setenv("IRIS_DATABASE_URL", url)
    get_settings.cache_clear()
    try:

        def read(session: Session) -> tuple[int, bool]:
            value = int(session.execute(sa.text("SELECT 1")).scalar_one())
            dbapi = session.connection().connection.dbapi_connection
            return value, _in_transaction(dbapi)

        assert asyncio.run(db.in_one_statement(read)) == (1, False)
        if kind == "postgresql":  # sqlite3 itself begins only before a write
            assert asyncio.run(db.in_session(read)) == (1, True)  # the usual session: open
    finally:
        get_settings.cache_clear()
        drop()


def _in_transaction(dbapi_connection: Any) -> bool:
    if hasattr(dbapi_connection, "info"):  # psycopg
        import psycopg

        return dbapi_connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
    return bool(dbapi_connection.in_transaction)  # sqlite3


# ------------------------------------------------------------------ hot statements


@pytest.fixture
def any_url(database_url: str) -> str:
    """The module's database on SQLite and PostgreSQL (``conftest.database_url``), emptied."""
    truncate_all(database_url)
    return database_url


def _seed_session(url: str) -> None:
    from iris_reflex import clock
    from iris_reflex.models import User, UserSession

    now = clock.now()
    with Session(db.engine_for(url)) as session:
        user = User(username="ada", username_key="ada", password_hash="x", created_at=now)
        session.add(user)
        session.flush()
        assert user.id is not None
        session.add(
            UserSession(
                id="s1", user_id=user.id, created_at=now, expires_at=now, last_active_at=None
            )
        )
        session.commit()


def test_a_hot_statement_reads_what_session_execute_reads(any_url: str) -> None:
    """Same rows, same types (datetimes through the app's UTC type, NULLs, text), by name
    and by position, on both databases."""
    from iris_reflex.services import auth

    _seed_session(any_url)
    plain = auth._SESSION_BY_ID.statement
    with Session(db.engine_for(any_url)) as session:
        expected = session.execute(plain, {"id": "s1"}).all()
        hot = auth._SESSION_BY_ID.run(session, {"id": "s1"})
        assert isinstance(hot, db.HotResult)  # nothing listens: the fast way
        rows = hot.all()
    assert [tuple(r) for r in rows] == [tuple(r) for r in expected]
    assert rows[0].expires_at == expected[0].expires_at
    assert rows[0].expires_at.tzinfo is not None and rows[0].revoked_at is None
    with Session(db.engine_for(any_url)) as session:
        assert auth._SESSION_BY_ID.run(session, {"id": "nobody"}).first() is None
        with pytest.raises(sa.exc.NoResultFound):
            auth._SESSION_BY_ID.run(session, {"id": "nobody"}).one()


def test_a_hot_statement_is_part_of_the_session_transaction(any_url: str) -> None:
    """It runs on the session's own connection: rolled back with it. Its datetime goes
    through the app's UTC type both ways."""
    from iris_reflex import clock
    from iris_reflex.models import UserSession

    table = UserSession.metadata.tables["user_sessions"]
    revoke = db.HotStatement(
        sa.update(table)
        .where(table.c.id == sa.bindparam("sid", type_=sa.String))
        .values(revoked_at=sa.bindparam("at", type_=table.c.revoked_at.type))
        .returning(table.c.revoked_at)
    )
    _seed_session(any_url)
    engine = db.engine_for(any_url)
    now = clock.now()
    with Session(engine) as session:
        assert revoke.run(session, {"sid": "s1", "at": now}).scalar_one() == now
        session.rollback()
    with engine.connect() as connection:
        assert connection.execute(sa.select(table.c.revoked_at)).scalar_one() is None


def test_a_hot_statement_goes_through_sqlalchemy_while_someone_listens(any_url: str) -> None:
    """A listener on the engine's statements (a test counting them, a tracer) sees it."""
    from iris_reflex.services import auth

    _seed_session(any_url)
    engine = db.engine_for(any_url)
    seen: list[str] = []

    def listen(*args: Any) -> None:
        seen.append(args[2])

    sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        with Session(engine) as session:
            row = auth._SESSION_BY_ID.run(session, {"id": "s1"}).one()
    finally:
        sa.event.remove(engine, "before_cursor_execute", listen)
    assert row.id == "s1"
    assert [s for s in seen if "user_sessions" in s]
