"""Speech-to-speech settings per assistant (mode ``realtime``: the vendor, its model and
voice, and its key, encrypted); whether an assistant records its calls, and whether a call
has a recording.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assistants") as batch:
        batch.add_column(sa.Column("realtime", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("record", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("recorded", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("recorded")
    with op.batch_alter_table("assistants") as batch:
        batch.drop_column("record")
        batch.drop_column("realtime")
