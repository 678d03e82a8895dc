"""retention: a message's digests (its tombstone once its bytes are purged), a dead letter's purge
time, legal holds, the record of each purge (core.retention), and the indexes by which the purge
finds what is still pending

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: Union[str, Sequence[str], None] = "0018"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

Serial = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("messages") as messages:
        messages.alter_column("envelope", existing_type=sa.Text(), nullable=True)
        messages.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
        messages.add_column(sa.Column("raw_sha256", sa.String(64), nullable=True))
        messages.add_column(sa.Column("document_sha256", sa.String(64), nullable=True))
    op.create_index(
        "messages_unpurged",
        "messages",
        ["tenant", "stored_at", "id"],
        postgresql_where=sa.text("purged_at IS NULL"),
        sqlite_where=sa.text("purged_at IS NULL"),
    )
    op.create_index(
        "messages_purged",
        "messages",
        ["purged_at"],
        postgresql_where=sa.text("purged_at IS NOT NULL"),
        sqlite_where=sa.text("purged_at IS NOT NULL"),
    )
    op.create_index("outbox_message", "outbox", ["message_id"])
    op.create_index("processed_key", "processed", ["key"])
    op.add_column("dead_letters", sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("dead_letters_message", "dead_letters", ["message_id"])
    op.create_table(
        "legal_holds",
        sa.Column("id", Serial, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(4), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("held_by", sa.String(100), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_by", sa.String(100), nullable=True),
    )
    op.create_table(
        "retention_purges",
        sa.Column("id", Serial, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(4), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("by", sa.String(100), nullable=False),
        sa.Column("counts", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("retention_purges")
    op.drop_table("legal_holds")
    op.drop_index("dead_letters_message", table_name="dead_letters")
    op.drop_column("dead_letters", "purged_at")
    op.drop_index("processed_key", table_name="processed")
    op.drop_index("outbox_message", table_name="outbox")
    op.drop_index("messages_purged", table_name="messages")
    op.drop_index("messages_unpurged", table_name="messages")
    with op.batch_alter_table("messages") as messages:
        messages.drop_column("document_sha256")
        messages.drop_column("raw_sha256")
        messages.drop_column("purged_at")
        messages.alter_column("envelope", existing_type=sa.Text(), nullable=False)
