"""The Alembic migrations build exactly the schema the models describe, on both databases,
and the app refuses to start on a database that is behind."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import iris_reflex.models  # noqa: F401
from iris_reflex import startup
from iris_reflex.db import engine_for
from iris_reflex.settings import get_settings
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
    from alembic import command
    from alembic.config import Config

    from iris_reflex.settings import PROJECT_ROOT

    url, drop = create_database("sqlite", tmp_path)
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["url"] = url
    command.downgrade(config, "base")
    assert set(inspect(engine_for(url)).get_table_names()) <= {"alembic_version"}
    command.upgrade(config, "head")
    assert "messages" in inspect(engine_for(url)).get_table_names()
    drop()
