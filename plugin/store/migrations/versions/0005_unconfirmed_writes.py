"""Ticket writes whose outcome is unknown: not posted again before this time.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ticket_actions") as batch:
        batch.add_column(sa.Column("unconfirmed_until", sa.DateTime(timezone=True),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket_actions") as batch:
        batch.drop_column("unconfirmed_until")
