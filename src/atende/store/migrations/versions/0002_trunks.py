"""Trunks, and the trunk a call came in (or went out) through.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trunks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("number", sa.String(64), nullable=False),
        sa.Column("username", sa.String(200), nullable=False),
        sa.Column("password_enc", sa.Text(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer()),
        sa.Column("transport", sa.String(8), nullable=False),
        sa.Column("domain", sa.String(255)),
        sa.Column("outbound_proxy", sa.String(300)),
        sa.Column("number_format", sa.String(16), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("inbound_auth", sa.String(16), nullable=False),
        sa.Column("allowed_ips", sa.JSON(), nullable=False),
        sa.Column("contact_user", sa.String(64), nullable=False, unique=True),
        sa.Column("assistant_id", sa.String(32),
                  sa.ForeignKey("assistants.id", ondelete="SET NULL")),
        sa.Column("max_concurrent_calls", sa.Integer(), nullable=False),
        sa.Column("allowed_countries", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("trunk_id", sa.String(32), nullable=True))
        batch.create_index("ix_calls_trunk_id", ["trunk_id"])
        batch.create_foreign_key("fk_calls_trunk_id", "trunks", ["trunk_id"], ["id"],
                                 ondelete="SET NULL")


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_constraint("fk_calls_trunk_id", type_="foreignkey")
        batch.drop_index("ix_calls_trunk_id")
        batch.drop_column("trunk_id")
    op.drop_table("trunks")
