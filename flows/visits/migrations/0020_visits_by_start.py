"""visits_start: a tenant's visit versions by when they start, for the purge of the visits no
correction can reach (flows.reimbursement.retention)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: Union[str, Sequence[str], None] = "0019"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index("visits_start", "visits", ["tenant", sa.text("coalesce(actual_start, planned_start)")])


def downgrade() -> None:
    op.drop_index("visits_start", table_name="visits")
