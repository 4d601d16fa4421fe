"""Shared fixtures: a real SQLite and a real PostgreSQL database per test module.

Each database is created, migrated with Alembic (so the migrations are tested too) and
dropped; every test starts from empty tables. PostgreSQL's address comes from
``IRIS_TEST_POSTGRES_URL``; when it does not answer, a local run skips those cases with a
plain message, and ``IRIS_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) makes that a failure.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

# Settings are read once per process: fix them before anything imports the app.
_TMP = Path(tempfile.mkdtemp(prefix="iris-tests-"))
os.environ.setdefault("IRIS_JWT_SECRET", "test-secret-" + "x" * 40)
os.environ.setdefault("IRIS_DATABASE_URL", f"sqlite:///{_TMP / 'default.db'}")
os.environ.setdefault("IRIS_UPLOAD_DIR", str(_TMP / "uploads"))
# Tests sign up many people from one address and search a lot: the rate limits are generous
# here, and the tests of the limits themselves set small ones (tests/services/test_limits.py).
for _limit in (
    "FRIEND_REQUESTS_PER_HOUR",
    "REGISTRATIONS_PER_HOUR",
    "SEARCHES_PER_MINUTE",
    "PASSKEY_CHALLENGES_PER_MINUTE",
):
    os.environ.setdefault(f"IRIS_{_limit}", "1000000")

import sqlalchemy as sa  # noqa: E402
from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from sqlmodel import Session, SQLModel  # noqa: E402

from iris_reflex import clock  # noqa: E402
from iris_reflex.db import engine_for, normalize_url  # noqa: E402
from iris_reflex.settings import PROJECT_ROOT  # noqa: E402

POSTGRES_ADMIN_URL = os.environ.get(
    "IRIS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("IRIS_REQUIRE_POSTGRES") == "1"


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest migration."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["url"] = url
    command.upgrade(config, "head")


def _postgres_admin() -> sa.Engine:
    engine = sa.create_engine(normalize_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        message = f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc.orig}"
        if REQUIRE_POSTGRES:
            pytest.fail(message + " (IRIS_REQUIRE_POSTGRES=1 forbids skipping)")
        pytest.skip(message + " (set IRIS_TEST_POSTGRES_URL, or start PostgreSQL)")
    return engine


def create_database(kind: str, tmp_dir: Path) -> tuple[str, Callable[[], None]]:
    """A new, migrated, empty database of ``kind``; returns its URL and a drop function."""
    if kind == "sqlite":
        path = tmp_dir / f"iris-{secrets.token_hex(4)}.db"
        url = f"sqlite:///{path}"
        migrate(url)

        def drop() -> None:
            engine_for(url).dispose()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)

        return url, drop
    admin = _postgres_admin()
    name = f"iris_test_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    migrate(url)

    def drop_pg() -> None:
        engine_for(url).dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop_pg


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database for this module, on SQLite and on PostgreSQL."""
    url, drop = create_database(request.param, tmp_path_factory.mktemp("db"))
    yield url
    drop()


def truncate_all(url: str) -> None:
    """Empty every table (children first), keeping the schema."""
    engine = engine_for(url)
    tables = list(reversed(SQLModel.metadata.sorted_tables))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    """A session on this module's database; the tables are emptied after the test."""
    engine = engine_for(database_url)
    with Session(engine, expire_on_commit=False) as db:
        yield db
    truncate_all(database_url)


class FrozenClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


@pytest.fixture
def frozen_clock() -> Iterator[FrozenClock]:
    """Replace ``iris_reflex.clock`` for the test: time moves only by ``advance``."""
    fake = FrozenClock(datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    clock.set_clock(fake)
    yield fake
    clock.set_clock(None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests run last: fast feedback first, and Playwright's sync API keeps an event
    loop running in the main thread that would break ``asyncio.run`` in later tests."""
    items.sort(key=lambda item: "/tests/e2e/" in str(item.path).replace(os.sep, "/"))
