"""Daily counts behind the insights page (lookups, flags by code, refunds prevented).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "insight_counts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("installation_id", sa.Integer,
                  sa.ForeignKey("installations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("metric", sa.String(80), nullable=False),
        sa.Column("count", sa.Integer, nullable=False, server_default="0"),
        sa.UniqueConstraint("installation_id", "day", "metric"),
    )


def downgrade() -> None:
    op.drop_table("insight_counts")
