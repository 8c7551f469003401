"""Webhook triggers, and Idempotency-Key on calls.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hooks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("trunk_id", sa.String(32), nullable=True),
        sa.Column("assistant_id", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    )
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("hook_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("idempotency_key", sa.String(200), nullable=True))
        batch.add_column(sa.Column("request_hash", sa.String(64), nullable=True))
        batch.create_unique_constraint("uq_calls_idempotency_key", ["idempotency_key"])


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_constraint("uq_calls_idempotency_key", type_="unique")
        for name in ("request_hash", "idempotency_key", "hook_id"):
            batch.drop_column(name)
    op.drop_table("hooks")
