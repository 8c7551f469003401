"""Assistants configured through the API: greeting, prompt, language models with their
keys (encrypted), tools, transfer destinations, fallback and turn-taking; llm_ms per turn.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assistants") as batch:
        batch.add_column(sa.Column("greeting", sa.Text(), nullable=True))
        batch.add_column(sa.Column("prompt", sa.Text(), nullable=True))
        batch.add_column(sa.Column("mode", sa.String(16), nullable=False,
                                   server_default="pipeline"))
        batch.add_column(sa.Column("llm", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("tools", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("http_tools", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("transfers", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("fallback", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("conversation", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("turns") as batch:
        batch.add_column(sa.Column("llm_ms", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.drop_column("llm_ms")
    with op.batch_alter_table("assistants") as batch:
        for name in ("updated_at", "conversation", "fallback", "transfers", "http_tools",
                     "tools", "llm", "mode", "prompt", "greeting"):
            batch.drop_column(name)
