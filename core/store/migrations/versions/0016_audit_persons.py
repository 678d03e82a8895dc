"""audit_persons: whose data each audit entry touched, by a keyed hash of the personnummer, so that
the log is searched by person without holding any number

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: Union[str, Sequence[str], None] = "0015"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

Serial = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_persons",
        sa.Column("audit_id", Serial, sa.ForeignKey("audit.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("person", sa.String(64), primary_key=True),
    )
    op.create_index("audit_persons_person", "audit_persons", ["person", "audit_id"])


def downgrade() -> None:
    op.drop_index("audit_persons_person", table_name="audit_persons")
    op.drop_table("audit_persons")
