"""Opening hours per assistant: a weekly schedule in a time zone with holidays, and what
calls coming outside them get (a message, then hang up, a transfer or a message taken).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assistants") as batch:
        batch.add_column(sa.Column("business_hours", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assistants") as batch:
        batch.drop_column("business_hours")
