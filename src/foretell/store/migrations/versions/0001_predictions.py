"""Create the predictions table and its listing indexes.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version_number", sa.Integer, nullable=False),
        sa.Column("deployment_id", sa.String(128), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("input", sa.Text, nullable=False),
        sa.Column("output", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("webhook", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("setup_time", sa.Float, nullable=True),
        sa.Column("execution_time", sa.Float, nullable=True),
        sa.Column("logs", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
    )
    op.create_index("ix_predictions_created_at_id", "predictions", ["created_at", "id"])
    op.create_index(
        "ix_predictions_owner_name_created_at", "predictions", ["owner", "name", "created_at"]
    )
    op.create_index("ix_predictions_status", "predictions", ["status"])


def downgrade() -> None:
    op.drop_index("ix_predictions_status", table_name="predictions")
    op.drop_index("ix_predictions_owner_name_created_at", table_name="predictions")
    op.drop_index("ix_predictions_created_at_id", table_name="predictions")
    op.drop_table("predictions")
