import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Uuid, false
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UTCDateTime


class Transfer(Base):
    """A warm transfer attempt from one body to the other, and how it ended."""

    __tablename__ = "transfers"
    __table_args__ = (
        Index("ix_transfers_outcome_at", "outcome_at"),
        Index("ix_transfers_from_org_created_at", "from_org", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    from_org: Mapped[str] = mapped_column(String(32))
    to_org: Mapped[str] = mapped_column(String(32))
    topic: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ivr_option: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sender_reference: Mapped[str | None] = mapped_column(String(32), nullable=True)
    wait_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Copied from the route when the transfer starts, so a later change of the table
    # does not rewrite history.
    wait_threshold_seconds: Mapped[int] = mapped_column(Integer)
    permission_to_share_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # waiting | connected | failed | declined | caller_hung_up | no_outcome_recorded
    status: Mapped[str] = mapped_column(String(24))
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # connected_at or failed_at, when the caller declined or hung up, or when the worker closed
    # a forgotten transfer: the moment that counts in the monthly report.
    outcome_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Connected, but after the wait threshold: still a warm transfer, counted on its own.
    answered_after_threshold: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # One of the receiving body's contact reasons (app/protocol), or none.
    contact_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_by_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
