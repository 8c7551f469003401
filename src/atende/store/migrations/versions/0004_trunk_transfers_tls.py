"""Trunks: whether the other side may transfer their calls away (incoming REFER), and
whether a TLS trunk's certificate is checked.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trunks") as batch:
        batch.add_column(sa.Column("accept_transfers", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("tls_verify", sa.Boolean(), nullable=False,
                                   server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("trunks") as batch:
        batch.drop_column("tls_verify")
        batch.drop_column("accept_transfers")
