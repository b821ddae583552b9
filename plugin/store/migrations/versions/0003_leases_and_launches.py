"""Outbox leases (one worker sends a write at a time) and used launch tokens shared by workers.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ticket_actions") as batch:
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "used_launch_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_used_launch_tokens_expires", "used_launch_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_used_launch_tokens_expires", table_name="used_launch_tokens")
    op.drop_table("used_launch_tokens")
    with op.batch_alter_table("ticket_actions") as batch:
        batch.drop_column("lease_until")
