"""message_ledger: a narrow row for every message, written as it is stored, where a purged
message's tombstone was written by the purge; the digests move there from messages. The purge then
deletes a message's row and writes nothing for it: the tombstones' inserts, one random place in
their key's index each, were the purge's largest cost

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07

"""

import datetime as dt
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: Union[str, Sequence[str], None] = "0023"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

COLUMNS = "id, tenant, type, stored_at, raw_sha256, document_sha256"


def upgrade() -> None:
    op.create_table(
        "message_ledger",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(4), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("raw_sha256", sa.LargeBinary(), nullable=False),
        sa.Column("document_sha256", sa.LargeBinary(), nullable=True),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.execute(f"INSERT INTO message_ledger ({COLUMNS}) SELECT {COLUMNS} FROM messages")
    op.execute(
        f"INSERT INTO message_ledger ({COLUMNS}, purged_at) SELECT {COLUMNS}, purged_at FROM message_tombstones "
        "t WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = t.id)"
    )
    op.create_index("message_ledger_stored", "message_ledger", ["tenant", "stored_at"])
    op.drop_table("message_tombstones")
    with op.batch_alter_table("messages") as messages:
        messages.drop_column("raw_sha256")
        messages.drop_column("document_sha256")


def downgrade() -> None:
    with op.batch_alter_table("messages") as messages:
        messages.add_column(sa.Column("raw_sha256", sa.LargeBinary(), nullable=True))
        messages.add_column(sa.Column("document_sha256", sa.LargeBinary(), nullable=True))
    for digest in ("raw_sha256", "document_sha256"):
        op.execute(f"UPDATE messages SET {digest} = (SELECT {digest} FROM message_ledger l WHERE l.id = messages.id)")
    with op.batch_alter_table("messages") as messages:
        messages.alter_column("raw_sha256", existing_type=sa.LargeBinary(), nullable=False)
    op.create_table(
        "message_tombstones",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(4), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("raw_sha256", sa.LargeBinary(), nullable=False),
        sa.Column("document_sha256", sa.LargeBinary(), nullable=True),
    )
    op.create_index("message_tombstones_purged", "message_tombstones", ["tenant", "purged_at"])
    # a purge the ledger did not time is taken as made now: its tombstone is kept the longer
    op.get_bind().execute(
        sa.text(
            f"INSERT INTO message_tombstones ({COLUMNS}, purged_at) SELECT {COLUMNS}, COALESCE(purged_at, :now) "
            "FROM message_ledger l WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = l.id)"
        ).bindparams(sa.bindparam("now", dt.datetime.now(dt.timezone.utc), type_=sa.DateTime(timezone=True)))
    )
    op.drop_table("message_ledger")
