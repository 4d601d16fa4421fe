"""conversations lose last_message_at: nothing read it, and it outlived the messages

Every send updated it (one statement and one row version per message); nothing ever read it,
and it kept when two people last wrote to each other after their messages had expired.

Revision ID: 0007_no_last_message_at
Revises: 0006_passkeys
Create Date: 2026-12-01 00:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007_no_last_message_at"
down_revision: str | None = "0006_passkeys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE on both (SQLite has it since 3.35): a batch rebuild of SQLite's
    # table would drop the old one, which with foreign keys on deletes every message in it.
    op.execute("ALTER TABLE conversations DROP COLUMN last_message_at")


def downgrade() -> None:
    op.execute("ALTER TABLE conversations ADD COLUMN last_message_at TIMESTAMP WITH TIME ZONE")
