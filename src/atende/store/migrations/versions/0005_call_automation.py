"""Call automation: the task, metadata and outcome of a call, and the webhook outbox.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("source", sa.String(16), nullable=True))
        batch.add_column(sa.Column("task", sa.Text(), nullable=True))
        batch.add_column(sa.Column("caller_name", sa.String(200), nullable=True))
        batch.add_column(sa.Column("phone_number", sa.String(64), nullable=True))
        batch.add_column(sa.Column("metadata", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("webhook_url", sa.String(2000), nullable=True))
        batch.add_column(sa.Column("outcome", sa.String(32), nullable=True))
        batch.add_column(sa.Column("summary", sa.Text(), nullable=True))
        batch.add_column(sa.Column("fields", sa.JSON(), nullable=True))
        batch.create_index("ix_calls_source", ["source"])
        batch.create_index("ix_calls_outcome", ["outcome"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(32), sa.ForeignKey("calls.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("history", sa.JSON(), nullable=False),
    )
    op.create_index("ix_deliveries_call_id", "deliveries", ["call_id"])
    op.create_index("ix_deliveries_status", "deliveries", ["status"])
    op.create_index("ix_deliveries_next_attempt_at", "deliveries", ["next_attempt_at"])


def downgrade() -> None:
    op.drop_table("deliveries")
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_outcome")
        batch.drop_index("ix_calls_source")
        for name in ("fields", "summary", "outcome", "webhook_url", "metadata",
                     "phone_number", "caller_name", "task", "source"):
            batch.drop_column(name)
