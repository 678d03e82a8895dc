"""migration: runs and checkpoints, every record's verdict, and what was sent to the case system

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: Union[str, Sequence[str], None] = "0011"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

Serial = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "migration_runs",
        sa.Column("id", Serial, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(4), nullable=False),
        sa.Column("folder", sa.Text(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("export_date", sa.Date(), nullable=True),
        sa.Column("file", sa.String(12), nullable=True),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.String(100), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "migration_files",
        sa.Column("run_id", Serial, sa.ForeignKey("migration_runs.id"), primary_key=True),
        sa.Column("file", sa.String(12), primary_key=True),
        sa.Column("trailer_count", sa.Integer(), nullable=True),
        sa.Column("trailer_line", sa.Integer(), nullable=True),
        sa.Column("problem", sa.Text(), nullable=True),
    )
    op.create_table(
        "migration_verdicts",
        sa.Column("run_id", Serial, sa.ForeignKey("migration_runs.id"), primary_key=True),
        sa.Column("file", sa.String(12), primary_key=True),
        sa.Column("line", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(40), nullable=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("verdict", sa.String(10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("same_as_line", sa.Integer(), nullable=True),
        sa.Column("document", sa.String(40), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
    )
    op.create_index("migration_verdicts_key", "migration_verdicts", ["run_id", "file", "key"])
    op.create_index("migration_verdicts_document", "migration_verdicts", ["run_id", "file", "document", "verdict"])
    op.create_table(
        "migration_sent",
        sa.Column("tenant", sa.String(4), primary_key=True),
        sa.Column("kind", sa.String(10), primary_key=True),
        sa.Column("key", sa.String(40), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("migration_sent")
    op.drop_table("migration_verdicts")
    op.drop_table("migration_files")
    op.drop_table("migration_runs")
