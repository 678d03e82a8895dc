"""Pages of a listing: the rows asked for and how many there are in all, so that whoever reads
a page is told what it does not show and how to see it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Unpack, cast

from sqlalchemy import Connection, Select, func, select


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    """Each row's columns by name."""
    total: int
    """Rows in the whole listing."""
    offset: int

    @property
    def more(self) -> int:
        """Rows after this page."""
        return max(0, self.total - self.offset - len(self.rows))


def page(conn: Connection, query: Select[Unpack[tuple[Any, ...]]], *, limit: int, offset: int = 0) -> Page:
    """`limit` rows of an ordered `query` from `offset` on, with the count of the whole."""
    if limit < 1 or offset < 0:
        raise ValueError("limit must be 1 or more and offset 0 or more")
    # COUNT(*) answers one row, never NULL
    total = cast(int, conn.scalar(select(func.count()).select_from(query.order_by(None).subquery())))
    rows = [dict(row._mapping) for row in conn.execute(query.limit(limit).offset(offset))]
    return Page(rows, total, offset)
