"""Helpdesk host support: uninstall state, cache generation, ticket action outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("installations") as batch:
        batch.add_column(sa.Column("uninstalled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("cache_generation", sa.Integer(), nullable=False,
                                   server_default="0"))
    op.create_table(
        "ticket_actions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("installation_id", sa.Integer(),
                  sa.ForeignKey("installations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("ticket_id", sa.String(40), nullable=False),
        sa.Column("order_number", sa.String(60), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("idempotency_key", sa.String(120), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("installation_id", "idempotency_key"),
    )
    op.create_index("ix_ticket_actions_pending", "ticket_actions", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_ticket_actions_pending", table_name="ticket_actions")
    op.drop_table("ticket_actions")
    with op.batch_alter_table("installations") as batch:
        batch.drop_column("cache_generation")
        batch.drop_column("uninstalled_at")
