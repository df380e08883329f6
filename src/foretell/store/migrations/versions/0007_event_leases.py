"""Leases on unsettled webhook events: which API process delivers each, until when.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Events from before this revision have no claim: the first process to look delivers them.
_UNSETTLED = sa.text("status IN ('pending', 'failing')")


def upgrade() -> None:
    with op.batch_alter_table("webhook_events") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(32), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_webhook_events_unsettled_lease",
        "webhook_events",
        ["lease_until"],
        sqlite_where=_UNSETTLED,
        postgresql_where=_UNSETTLED,
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_events_unsettled_lease", table_name="webhook_events")
    with op.batch_alter_table("webhook_events") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("claimed_by")
