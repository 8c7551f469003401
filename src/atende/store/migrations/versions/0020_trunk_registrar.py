"""Several atende nodes: which one registers each extension trunk.

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trunks") as batch:
        batch.add_column(sa.Column("registrar_node", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trunks") as batch:
        batch.drop_column("registrar_node")
