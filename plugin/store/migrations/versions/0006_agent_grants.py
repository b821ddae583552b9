"""Agents sign in to their helpdesk: writes go out as them, and say who asked for them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ticket_actions") as batch:
        batch.add_column(sa.Column("actor_id", sa.String(40), nullable=True))
        batch.add_column(sa.Column("actor_name", sa.String(200), nullable=True))
    op.create_table(
        "agent_grants",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("installation_id", sa.Integer,
                  sa.ForeignKey("installations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("host_user_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("role", sa.String(40), nullable=False, server_default=""),
        sa.Column("credentials_encrypted", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("installation_id", "host_user_id"),
    )
    op.create_table(
        "agent_sign_ins",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("installation_id", sa.Integer,
                  sa.ForeignKey("installations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("state_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("claim_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("secret_encrypted", sa.Text, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("host_user_id", sa.String(40), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("claimed", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_agent_sign_ins_expires", "agent_sign_ins", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_agent_sign_ins_expires", "agent_sign_ins")
    op.drop_table("agent_sign_ins")
    op.drop_table("agent_grants")
    with op.batch_alter_table("ticket_actions") as batch:
        batch.drop_column("actor_name")
        batch.drop_column("actor_id")
