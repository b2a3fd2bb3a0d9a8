import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UTCDateTime


class ReportPublication(Base):
    """One published version of a month's contact-volume report, with its figures frozen.

    Publishing the same month again adds a version; earlier versions are never changed.
    Holds counts only: no caller personal data, no feedback text.
    """

    __tablename__ = "report_publications"
    __table_args__ = (UniqueConstraint("month", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM, a Europe/London calendar month
    version: Mapped[int] = mapped_column(Integer)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    fluctuation_note: Mapped[str] = mapped_column(Text)
    due_date: Mapped[date] = mapped_column(Date)
    on_time: Mapped[bool] = mapped_column(Boolean)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_by_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id"))
    published_by_org: Mapped[str] = mapped_column(String(32))
    # The key's name when it published (e.g. "LGSCO intake team leader"): keys are renamed or
    # revoked later, the record of who published stays.
    published_by_name: Mapped[str] = mapped_column(String(100))
