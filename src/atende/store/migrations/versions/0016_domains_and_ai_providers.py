"""AI providers as shared records, and FusionPBX domains: assistants, AI providers and API
keys may belong to one domain (domain_uuid), so an extension is unique within a domain
only.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# SQLite's unique constraint from 0001 has no name: batch mode reflects it under this one.
NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _extension_unique() -> str | None:
    for c in sa.inspect(op.get_bind()).get_unique_constraints("assistants"):
        if c["column_names"] == ["extension"]:
            return c["name"] or "uq_assistants_extension"
    return None


def upgrade() -> None:
    op.create_table(
        "ai_providers",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("domain_uuid", sa.String(36), nullable=True, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("api_key_enc", sa.Text, nullable=True),
        sa.Column("agent_id", sa.String(200), nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("base_url", sa.String(500), nullable=True),
        sa.Column("voice", sa.String(100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    unique = _extension_unique()
    with op.batch_alter_table("assistants", naming_convention=NAMES) as batch:
        batch.add_column(sa.Column("domain_uuid", sa.String(36), nullable=True))
        if unique is not None:
            batch.drop_constraint(unique, type_="unique")
        batch.create_index("ix_assistants_extension", ["extension"])
        batch.create_index("ix_assistants_domain_uuid", ["domain_uuid"])
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("domain_uuid", sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("domain_uuid")
    with op.batch_alter_table("assistants", naming_convention=NAMES) as batch:
        batch.drop_index("ix_assistants_domain_uuid")
        batch.drop_index("ix_assistants_extension")
        batch.drop_column("domain_uuid")
        batch.create_unique_constraint("uq_assistants_extension", ["extension"])
    op.drop_table("ai_providers")
