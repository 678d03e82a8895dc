"""retention: a purged message's tombstone (its bytes gone, their digests kept), a dead letter's
purge time, legal holds, and the record of each purge (core.retention)

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
    op.add_column("dead_letters", sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
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
    op.drop_column("dead_letters", "purged_at")
    with op.batch_alter_table("messages") as messages:
        messages.drop_column("document_sha256")
        messages.drop_column("raw_sha256")
        messages.drop_column("purged_at")
        messages.alter_column("envelope", existing_type=sa.Text(), nullable=False)
