"""A prediction's streamed: how a streaming model's output grew (text or items), else NULL.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Records from before this revision came from models that could not stream: NULL.
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("streamed", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("streamed")
