"""The X-Request-Id of the request that created a prediction, on its record and on each of its
webhook events (whose deliveries send it as their own X-Request-Id).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Records and events from before this revision were made without one: NULL.
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("request_id", sa.String(128), nullable=True))
    with op.batch_alter_table("webhook_events") as batch:
        batch.add_column(sa.Column("request_id", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_events") as batch:
        batch.drop_column("request_id")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("request_id")
