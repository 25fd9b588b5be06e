"""Keyset pagination of the list endpoints: ``limit``, ``after`` and the page they return.

A page is at most ``limit`` rows in the order of a unique key; ``next_after`` is the key of its
last row when more rows follow (pass it as ``after`` to read the next page) and ``None`` on the
last page. ``count`` is the number of rows matching the filters across all pages. Keyset pages
stay cheap however deep one reads (no ``OFFSET``), and a row added while a client pages through
shows up on a later page when its key sorts after the client's position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from sqlalchemy import Select, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

DEFAULT_LIMIT = 500
MAX_LIMIT = 5000

T = TypeVar("T")

Limit = Annotated[
    int,
    Query(ge=1, le=MAX_LIMIT, description=f"Rows per page (at most {MAX_LIMIT})"),
]
After = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=100,
        description="Start after this key: the previous page's `next_after`",
    ),
]


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of rows, the number of rows over all pages, and where the next page starts."""

    rows: list[T]
    count: int
    next_after: Any | None


def count_rows(session: Session, q: Select[Any]) -> int:
    """Return how many rows a query matches (before any page is cut)."""
    return int(session.scalar(select(func.count()).select_from(q.order_by(None).subquery())) or 0)


def cut(rows: Sequence[T], limit: int, key: Any) -> tuple[list[T], Any | None]:
    """Return the first ``limit`` of ``limit + 1`` fetched rows and the next page's ``after``.

    Parameters
    ----------
    rows
        Up to ``limit + 1`` rows in key order (one more than a page, to know whether more follow).
    limit
        Rows per page.
    key
        Function returning a row's key.
    """
    page = list(rows[:limit])
    return page, (key(page[-1]) if len(rows) > limit else None)


def keyset_page(
    session: Session,
    q: Select[Any],
    key: InstrumentedAttribute[Any],
    *,
    limit: int,
    after: Any | None,
) -> Page[Any]:
    """Return one page of ``q``'s rows ordered by a unique column ``key``, after ``after``.

    Parameters
    ----------
    session
        Database session.
    q
        The filtered query (``select(Model).where(...)``), without order or limit.
    key
        A unique column of the model, compared with ``after``.
    limit
        Rows per page.
    after
        The last key of the previous page, or ``None`` for the first page.
    """
    total = count_rows(session, q)
    if after is not None:
        q = q.where(key > after)
    rows = session.scalars(q.order_by(key).limit(limit + 1)).all()
    page, next_after = cut(rows, limit, lambda row: getattr(row, key.key))
    return Page(page, total, next_after)
