"""Pydantic schemas of uploads and master data."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from api.errors import ErrorItem


class UploadResult(BaseModel):
    """What an upload stored, and the rows it skipped (only with ``keep_good``)."""

    kind: str
    stored: int
    rejected: list[ErrorItem] = []


class RecordRead(BaseModel):
    """A stored depot, courier or job, as the model's JSON."""

    id: str
    data: dict[str, Any]


class RecordList(BaseModel):
    """A page of records: ``count`` is over all pages; ``next_after`` starts the next page."""

    data: list[RecordRead]
    count: int = Field(description="Records matching, over all pages")
    next_after: str | None = Field(
        default=None, description="Pass as `after` for the next page; null on the last page"
    )
