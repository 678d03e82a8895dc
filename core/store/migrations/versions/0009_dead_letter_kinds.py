"""dead_letters: room for the kind misconfigured (the hub's own fault, held until fixed)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: Union[str, Sequence[str], None] = "0008"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        batch.alter_column("kind", type_=sa.String(20), existing_type=sa.String(10), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        batch.alter_column("kind", type_=sa.String(10), existing_type=sa.String(20), existing_nullable=False)
