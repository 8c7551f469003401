"""Trunks of kind freeswitch: calls placed through FreeSWITCH's event socket (originate),
with the dial string FreeSWITCH is to use for the number.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trunks") as batch:
        batch.add_column(sa.Column("dial_string", sa.String(300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trunks") as batch:
        batch.drop_column("dial_string")
