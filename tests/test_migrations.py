"""The Alembic migrations build exactly the schema the models describe, on both databases,
and the app refuses to start on a database that is behind."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import iris_reflex.models  # noqa: F401
from iris_reflex import startup
from iris_reflex.db import engine_for
from iris_reflex.settings import PROJECT_ROOT, get_settings
from tests.conftest import create_database


def test_migrated_schema_matches_models(database_url):
    with engine_for(database_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_hot_query_indexes_exist(database_url):
    indexes = {ix["name"] for ix in inspect(engine_for(database_url)).get_indexes("messages")}
    assert {"ix_messages_conversation_id_id", "ix_messages_unread", "ix_messages_expires_at"} <= (
        indexes
    )


def test_up_to_date_database_passes_start_up_check(database_url, monkeypatch):
    monkeypatch.setattr(get_settings(), "database_url", database_url)
    assert startup.pending_migrations() == []


def test_start_up_refuses_unmigrated_database(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    monkeypatch.setattr(get_settings(), "database_url", url)
    monkeypatch.setattr(get_settings(), "upload_dir", tmp_path / "uploads")
    with pytest.raises(RuntimeError, match="missing migrations"):
        startup.check_database()


def test_downgrade_then_upgrade_round_trips(tmp_path):
    url, drop = create_database("sqlite", tmp_path)
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["url"] = url
    command.downgrade(config, "base")
    assert set(inspect(engine_for(url)).get_table_names()) <= {"alembic_version"}
    command.upgrade(config, "head")
    assert "messages" in inspect(engine_for(url)).get_table_names()
    drop()


NEVER_REUSED = (
    "users",
    "conversations",
    "friendships",
    "blocks",
    "messages",
    "attachments",
    "recovery_codes",
    "passkeys",
)


def test_sqlite_tables_whose_ids_name_things_never_reuse_ids(database_url):
    """AUTOINCREMENT on SQLite; PostgreSQL's identity sequences never go back already."""
    engine = engine_for(database_url)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            serial = conn.execute(
                sa.text(
                    "SELECT table_name FROM information_schema.columns WHERE column_name = 'id'"
                    " AND column_default LIKE 'nextval(%' AND table_schema = 'public'"
                )
            ).scalars()
            assert set(NEVER_REUSED) <= set(serial)
            return
        schema = dict(
            conn.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")).all()
        )
    for table in NEVER_REUSED:
        assert "AUTOINCREMENT" in schema[table], table


def test_the_autoincrement_rebuild_keeps_every_row_and_reference(tmp_path):
    """Rebuilding ``users`` drops the old table: with foreign keys on, SQLite would cascade
    that to every conversation and message. A database at the revision before keeps all."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["url"] = url
    command.upgrade(config, "0002_used_handoffs")
    engine = engine_for(url)
    now = "2026-01-01 00:00:00.000000"
    with engine.begin() as conn:
        for uid, name in ((1, "ada"), (2, "bob"), (3, "cat")):
            conn.execute(
                sa.text(
                    "INSERT INTO users (id, username, username_key, display_name, status_message,"
                    " password_hash, theme, read_receipts, created_at)"
                    " VALUES (:id, :n, :n, :n, '', 'x', 'system', 1, :now)"
                ),
                {"id": uid, "n": name, "now": now},
            )
        conn.execute(
            sa.text(
                "INSERT INTO conversations (id, user_low_id, user_high_id, created_at)"
                " VALUES (7, 1, 3, :now)"
            ),
            {"now": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO messages (id, conversation_id, sender_id, recipient_id, kind, body,"
                " created_at) VALUES (9, 7, 3, 1, 'text', 'hello', :now)"
            ),
            {"now": now},
        )
        conn.execute(sa.text("DELETE FROM users WHERE id = 2"))

    command.upgrade(config, "head")

    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT id FROM users ORDER BY id")).scalars().all() == [1, 3]
        assert conn.execute(sa.text("SELECT body FROM messages")).scalars().all() == ["hello"]
        assert conn.execute(sa.text("SELECT id FROM conversations")).scalars().all() == [7]
        # The pool's connections have foreign keys (and their cascades) back on.
        assert conn.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
        conn.execute(
            sa.text(
                "INSERT INTO users (username, username_key, display_name, status_message,"
                " password_hash, theme, read_receipts, created_at)"
                " VALUES ('dan', 'dan', 'dan', '', 'x', 'system', 1, :now)"
            ),
            {"now": now},
        )
        assert conn.execute(sa.text("SELECT max(id) FROM users")).scalar() == 4
        conn.execute(sa.text("DELETE FROM users WHERE id = 3"))
        assert conn.execute(sa.text("SELECT count(*) FROM messages")).scalar() == 0
    command.downgrade(config, "0002_used_handoffs")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT id FROM users ORDER BY id")).scalars().all() == [1, 4]
    engine.dispose()
