"""Assistants, calls, turns and call events.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assistants",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("extension", sa.String(64), nullable=False, unique=True),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("voice", sa.String(300), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "calls",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("from_uri", sa.String(500), nullable=False),
        sa.Column("to_uri", sa.String(500), nullable=False),
        sa.Column("from_user", sa.String(200)),
        sa.Column("from_display", sa.String(200)),
        sa.Column("to_user", sa.String(200)),
        sa.Column("remote_address", sa.String(100)),
        sa.Column("external_id", sa.String(300), index=True),
        sa.Column("assistant_id", sa.String(32),
                  sa.ForeignKey("assistants.id", ondelete="SET NULL")),
        sa.Column("status", sa.String(32), nullable=False, index=True),
        sa.Column("hangup_cause", sa.String(64)),
        sa.Column("invite_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("answer_at", sa.DateTime(timezone=True)),
        sa.Column("end_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "turns",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(32), sa.ForeignKey("calls.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("speaker", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("intent", sa.String(64)),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("interrupted", sa.Boolean(), nullable=False),
        sa.Column("latency_ms", sa.Integer()),
        sa.Column("stt_ms", sa.Integer()),
        sa.Column("tts_ms", sa.Integer()),
        sa.Column("played_ms", sa.Integer()),
    )
    op.create_table(
        "call_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(32), sa.ForeignKey("calls.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("call_events")
    op.drop_table("turns")
    op.drop_table("calls")
    op.drop_table("assistants")
