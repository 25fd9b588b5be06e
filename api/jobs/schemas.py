"""Pydantic schemas of uploads and master data."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

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
    """A list of records."""

    data: list[RecordRead]
    count: int
