"""reimbursement: rates and amounts as whole öre (BIGINT), exact in the store on SQLite too

SQLite keeps NUMERIC as a binary float (392.67 read back as 392.67000000000001591...), and sums
done in SQL drift. Existing values are converted: rounded to the öre they were written as.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: Union[str, Sequence[str], None] = "0007"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

MONEY = {"reimbursement_lines": ("rate", "amount"), "reimbursement_adjustments": ("rate",)}


def upgrade() -> None:
    for table, columns in MONEY.items():
        for column in columns:
            _convert(table, column, sa.BigInteger(), existing=sa.Numeric(14, 2), to_ore=True)


def downgrade() -> None:
    for table, columns in MONEY.items():
        for column in columns:
            _convert(table, column, sa.Numeric(14, 2), existing=sa.BigInteger(), to_ore=False)


def _convert(table: str, column: str, type_, *, existing, to_ore: bool) -> None:
    if op.get_bind().dialect.name == "postgresql":
        using = f"round({column} * 100)::bigint" if to_ore else f"({column} / 100.0)::numeric(14, 2)"
        op.alter_column(table, column, type_=type_, existing_type=existing, postgresql_using=using)
        return
    # SQLite: values first (a REAL of whole öre becomes an INTEGER when the column takes that type)
    op.execute(
        f"UPDATE {table} SET {column} = CAST(round({column} * 100) AS INTEGER)"
        if to_ore
        else f"UPDATE {table} SET {column} = {column} / 100.0"
    )
    with op.batch_alter_table(table) as batch:
        batch.alter_column(column, type_=type_, existing_type=existing)
