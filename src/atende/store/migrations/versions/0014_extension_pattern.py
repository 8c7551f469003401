"""What an extension trunk may dial as an internal extension (the toll-fraud guard: any
other destination is a phone number, checked against the trunk's allowed countries).

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trunks") as batch:
        batch.add_column(sa.Column("extension_pattern", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trunks") as batch:
        batch.drop_column("extension_pattern")
