"""used handoffs: a login handoff token is redeemed once

Revision ID: 0002_used_handoffs
Revises: 0001
Create Date: 2026-11-30 12:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002_used_handoffs"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "used_handoffs",
        sa.Column("jti", sqlmodel.sql.sqltypes.AutoString(length=43), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jti"),
    )


def downgrade() -> None:
    op.drop_table("used_handoffs")
