"""outbox_sent as the table defines it, of the deliveries to steps only: 0022 made it of every
sent row, the feed's entries too, so that the relay wrote an entry of it for every event it sent

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: Union[str, Sequence[str], None] = "0022"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    _outbox_sent(sa.text("sent_at IS NOT NULL AND destination LIKE 'step:%'"))


def downgrade() -> None:
    _outbox_sent(sa.text("sent_at IS NOT NULL"))


def _outbox_sent(where: sa.TextClause) -> None:
    op.drop_index("outbox_sent", table_name="outbox")
    op.create_index("outbox_sent", "outbox", ["tenant", "sent_at", "id"], postgresql_where=where, sqlite_where=where)
