"""messages_stored_at: the messages of the last hours found without reading a year of them (the
console's overview and the figures behind /metrics)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04

"""

from typing import Sequence, Union

from alembic import op

revision: str = "0018"
down_revision: Union[str, Sequence[str], None] = "0017"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index("messages_stored_at", "messages", ["stored_at"])


def downgrade() -> None:
    op.drop_index("messages_stored_at", table_name="messages")
