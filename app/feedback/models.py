import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UTCDateTime


class Feedback(Base):
    """Feedback on a misdirected call or incorrect advice, about the other body (s.6.2)."""

    __tablename__ = "feedback"
    __table_args__ = (
        Index("ix_feedback_submitted_at", "submitted_at"),
        Index("ix_feedback_from_org_submitted_at", "from_org", "submitted_at"),
        # The body it is about lists it ("Feedback about us", GET /v1/feedback?direction=incoming).
        Index("ix_feedback_about_org_submitted_at", "about_org", "submitted_at"),
        # The report's answers of a month (app/reports/feedback_figures.py).
        Index(
            "ix_feedback_responded_at",
            "responded_at",
            postgresql_where=text("responded_at IS NOT NULL"),
            sqlite_where=text("responded_at IS NOT NULL"),
        ),
        # The ones not answered yet: "open at the month's end" reads no history.
        Index(
            "ix_feedback_unanswered",
            "submitted_at",
            postgresql_where=text("responded_at IS NULL"),
            sqlite_where=text("responded_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    from_org: Mapped[str] = mapped_column(String(32))
    about_org: Mapped[str] = mapped_column(String(32))
    case_references: Mapped[list[str]] = mapped_column(JSON)
    reason_for_contact: Mapped[str] = mapped_column(Text)
    names_and_times: Mapped[str] = mapped_column(Text)
    correct_advice: Mapped[str] = mapped_column(Text)
    suggested_action: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    mailbox: Mapped[str] = mapped_column(String(254))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id"))

    # Its answer (app/feedback/lifecycle.py): submitted -> acknowledged -> responded (closed),
    # by the body it is about. `version` goes up with every change and is its ETag.
    state: Mapped[str] = mapped_column(String(16), server_default="submitted")
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_by_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id"), nullable=True
    )
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    responded_by_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id"), nullable=True
    )
    remedial_action: Mapped[str | None] = mapped_column(Text, nullable=True)
    training_issue: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # England and Wales working days from its UK submission date to its answer's, written with
    # the answer (`response_working_days`): the report takes their median in SQL.
    response_working_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
