"""ORM table of each courier's cash for a day: issued, paid out (frozen at close), returned."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base, utcnow


class CashDayRecord(Base):
    """A courier's cash for one day; a difference stays flagged until a manager signs it off."""

    __tablename__ = "cash_days"
    __table_args__ = (UniqueConstraint("day", "courier_id", name="uq_cash_days_day_courier_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(index=True)
    courier_id: Mapped[str] = mapped_column(String(100))
    depot_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    issued_vnd: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    returned_vnd: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    paid_vnd: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    signed_off_at: Mapped[datetime | None] = mapped_column(nullable=True)
    signed_off_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    sign_off_note: Mapped[str] = mapped_column(String(1000), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
