"""Alembic environment: the URL comes from Iris settings (or ``-x url=...`` / the caller)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import iris_reflex.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from iris_reflex.db import engine_for, normalize_url
from iris_reflex.settings import get_settings

config = context.config
target_metadata = SQLModel.metadata


def _url() -> str:
    return normalize_url(
        context.get_x_argument(as_dictionary=True).get("url")
        or config.attributes.get("url")
        or get_settings().database_url
    )


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    with engine_for(_url()).connect() as connection:
        _run(connection)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    # SQLite: a migration that rebuilds a table (batch mode drops the old one) must not have
    # that drop cascade to every referencing row. The pragma only takes effect outside a
    # transaction, so it is set before the migrations' transaction and restored after it
    # (the connection goes back to the app's pool); migrations check foreign keys themselves.
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    try:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        if sqlite:
            connection.rollback()
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
