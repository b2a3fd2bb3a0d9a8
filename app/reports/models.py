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
    """One version of a month's contact-volume report, with its figures frozen.

    A version is made by the first body's team leader to sign it; it is complete when every
    body of the report has signed it (`report_signatures`), at `completed_at`. Signing after
    the figures or a note changed adds a version; earlier versions are never changed.
    The `published_*` columns are who made the version. `legacy`: published by one body
    before signing (migration 0014_signing), complete as it was. `on_time` is meaningful
    once complete: completed on or before the due date (UK date).
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
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    legacy: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class ReportSignature(Base):
    """One body's signature of one version: its team leader's reasons for fluctuations."""

    __tablename__ = "report_signatures"
    __table_args__ = (UniqueConstraint("publication_id", "org"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    publication_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("report_publications.id"))
    org: Mapped[str] = mapped_column(String(32))  # the body that signed
    fluctuation_note: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    signed_by_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id"))
    signed_by_name: Mapped[str] = mapped_column(String(100))
