"""ids are never reused on SQLite: AUTOINCREMENT on the tables whose ids name people and things

SQLite without AUTOINCREMENT gives a new row the highest rowid + 1, so deleting the newest
account handed its id to the next one. PostgreSQL's identity sequences never go back: there
this revision does nothing. On SQLite each table is rebuilt (Alembic's batch mode: create,
copy, drop, rename) with AUTOINCREMENT; the copy keeps every id and sets the table's counter
to the highest one. Foreign keys are off while it runs (alembic/env.py), or dropping the old
``users`` table would cascade to every row that refers to it; they are checked at the end.

Revision ID: 0003_sqlite_autoincrement
Revises: 0002_used_handoffs
Create Date: 2026-11-30 12:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003_sqlite_autoincrement"
down_revision: str | None = "0002_used_handoffs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("users", "conversations", "friendships", "blocks", "messages", "attachments")


def _rebuild(autoincrement: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError(
            "Foreign keys must be off while tables are rebuilt (alembic/env.py turns them off "
            "before the migration's transaction): dropping a table would cascade."
        )
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass
    broken = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"Foreign keys broken by the rebuild: {broken[:5]}")


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
