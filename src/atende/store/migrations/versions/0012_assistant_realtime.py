"""Speech-to-speech settings per assistant (mode ``realtime``): the vendor, its model and
voice, and its key (encrypted).

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


def downgrade() -> None:
    with op.batch_alter_table("assistants") as batch:
        batch.drop_column("realtime")
