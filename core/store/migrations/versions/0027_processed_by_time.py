"""processed_by_time: the steps' processed keys by when they were claimed, so that the retention
purge pairs a batch of deliveries with their keys by one range of it, where it probed the keys'
index once for each delivery

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07

"""

from typing import Sequence, Union

from alembic import op

revision: str = "0027"
down_revision: Union[str, Sequence[str], None] = "0026"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index("processed_by_time", "processed", ["processed_at"])


def downgrade() -> None:
    op.drop_index("processed_by_time", table_name="processed")
