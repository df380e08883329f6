"""Leases on unfinished predictions (which API process runs each, until when), and notices
between processes for databases without LISTEN/NOTIFY.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Rows from before this revision have no claim: the first process to look takes them.
_UNFINISHED = sa.text("status IN ('pending', 'processing')")


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(32), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_predictions_unfinished_lease",
        "predictions",
        ["lease_until"],
        sqlite_where=_UNFINISHED,
        postgresql_where=_UNFINISHED,
    )
    op.create_table(
        "notices",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("payload", sa.String(128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("notices")
    op.drop_index("ix_predictions_unfinished_lease", table_name="predictions")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("claimed_by")
