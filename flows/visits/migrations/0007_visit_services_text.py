"""visits: services as text; 20 codes of 40 characters did not fit in 400 (a row PostgreSQL refused)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: Union[str, Sequence[str], None] = "0006"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("visits") as batch:
        batch.alter_column("services", type_=sa.Text(), existing_type=sa.String(400), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("visits") as batch:
        batch.alter_column("services", type_=sa.String(400), existing_type=sa.Text(), existing_nullable=False)
