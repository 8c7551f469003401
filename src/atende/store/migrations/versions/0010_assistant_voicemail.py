"""Answering-machine detection per assistant: whether its calls listen for a voicemail
greeting before greeting, and whether they hang up or leave a message.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assistants") as batch:
        batch.add_column(sa.Column("voicemail", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assistants") as batch:
        batch.drop_column("voicemail")
