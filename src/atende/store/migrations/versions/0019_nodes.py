"""Several atende nodes on one database: the nodes, and the node each live call is on.

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("incarnation", sa.String(32), nullable=False),
        sa.Column("taken_over_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("taken_over_by", sa.String(64), nullable=True),
    )
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("node_id", sa.String(64), nullable=True))
        batch.create_index("ix_calls_node_id", ["node_id"])


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_node_id")
        batch.drop_column("node_id")
    op.drop_table("nodes")
