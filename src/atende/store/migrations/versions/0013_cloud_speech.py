"""Cloud speech per assistant: a recogniser (``stt``: Deepgram, OpenAI) and a voice
(``tts``: ElevenLabs, OpenAI), each with its key encrypted; the local engines stay the
backup. And the music an assistant plays while it holds the caller.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assistants") as batch:
        batch.add_column(sa.Column("stt", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("tts", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("hold_music", sa.String(500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assistants") as batch:
        batch.drop_column("hold_music")
        batch.drop_column("tts")
        batch.drop_column("stt")
