"""The call queue: scheduled calls, retries within calling hours, and each attempt's record.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True),
                                   nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("max_attempts", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("retry_after_s", sa.Float(), nullable=True))
        batch.add_column(sa.Column("calling_hours", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("ring_timeout_s", sa.Float(), nullable=True))
        batch.create_index("ix_calls_next_attempt_at", ["next_attempt_at"])
    op.create_table(
        "call_attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(32), sa.ForeignKey("calls.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("sip_status", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(200), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("call_attempts")
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_next_attempt_at")
        for name in ("ring_timeout_s", "calling_hours", "retry_after_s", "max_attempts",
                     "attempts", "next_attempt_at", "scheduled_at"):
            batch.drop_column(name)
