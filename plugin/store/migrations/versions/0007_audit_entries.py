"""The audit trail of actions taken from the sidebar (refunds first).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("installation_id", sa.Integer,
                  sa.ForeignKey("installations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actor_id", sa.String(40), nullable=False),
        sa.Column("actor_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("actor_role", sa.String(40), nullable=False, server_default=""),
        sa.Column("ticket_id", sa.String(40), nullable=False),
        sa.Column("order_number", sa.String(60), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("amount_minor", sa.Integer, nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("idempotency_key", sa.String(120), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="pending"),
        sa.Column("upstream_ids", sa.JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("installation_id", "idempotency_key"),
    )
    op.create_index("ix_audit_entries_when", "audit_entries", ["installation_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_audit_entries_when", "audit_entries")
    op.drop_table("audit_entries")
