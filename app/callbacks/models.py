import uuid
from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.database import Base, UTCDateTime


class CallbackRequest(Base):
    """A failed transfer turned into a request that the receiving body call the caller back.

    Holds no personal data: the caller's details live in CallerDetails so that they can be
    purged without changing any count.
    """

    __tablename__ = "callback_requests"
    __table_args__ = (
        Index("ix_callback_requests_from_org_requested_at", "from_org", "requested_at"),
        # Only the requests whose caller's details are still held: what a purge looks at.
        Index(
            "ix_callback_requests_unpurged",
            "requested_at",
            postgresql_where=text("personal_data_purged_at IS NULL"),
            sqlite_where=text("personal_data_purged_at IS NULL"),
        ),
        # The receiving body's list, most urgent first (app/callbacks/lifecycle.py).
        Index("ix_callback_requests_incoming_state", "to_org", "state", "close_due_at", "id"),
        Index("ix_callback_requests_incoming", "to_org", "close_due_at", "id"),
        # The sending body's list filtered by state, newest first.
        Index("ix_callback_requests_outgoing_state", "from_org", "state", "requested_at", "id"),
        # The report's ranges over a month (app/reports/callbacks.py).
        Index("ix_callback_requests_requested_at", "requested_at"),
        Index(
            "ix_callback_requests_first_attempt_at",
            "first_attempt_at",
            postgresql_where=text("first_attempt_at IS NOT NULL"),
            sqlite_where=text("first_attempt_at IS NOT NULL"),
        ),
        Index(
            "ix_callback_requests_closed_at",
            "closed_at",
            postgresql_where=text("closed_at IS NOT NULL"),
            sqlite_where=text("closed_at IS NOT NULL"),
        ),
        # The ones still open: with the one above, "open at a month's end" reads no history.
        Index(
            "ix_callback_requests_open",
            "requested_at",
            postgresql_where=text("closed_at IS NULL"),
            sqlite_where=text("closed_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # The failed transfer it came from (a foreign key by name: call backs import nothing of
    # transfers, whose one-request outcome writes both rows in order itself).
    transfer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("transfers.id"), unique=True)
    from_org: Mapped[str] = mapped_column(String(32))
    to_org: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(32))
    sender_reference: Mapped[str] = mapped_column(String(32))
    permission_to_share_at: Mapped[datetime] = mapped_column(UTCDateTime)
    mailbox: Mapped[str] = mapped_column(String(254))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    personal_data_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    # Its life (app/callbacks/lifecycle.py): requested -> acknowledged -> closed, with an
    # outcome. `version` goes up with every change and is the resource's ETag.
    state: Mapped[str] = mapped_column(String(16), server_default="requested")
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    return_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_by_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id"), nullable=True
    )
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_by_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id"), nullable=True
    )
    first_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The route's targets in the receiving body's working hours (RouteTable.callback_due).
    first_attempt_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    close_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Working seconds (the receiving body's opening hours) from the request to its first
    # attempt and to its closing, written with the transition, so that the report's medians
    # and percentiles are SQL aggregates. NULL until then (or when the body has left the table).
    first_attempt_working_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    close_working_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    caller: Mapped["CallerDetails | None"] = relationship(
        back_populates="callback_request", uselist=False, lazy="raise", passive_deletes=True
    )


class CallerDetails(Base):
    """The only personal data the protocol lets us share: name, contact number, provider."""

    __tablename__ = "caller_details"

    callback_request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("callback_requests.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(100))
    contact_number: Mapped[str] = mapped_column(String(20))  # E.164
    provider: Mapped[str] = mapped_column(String(200))

    callback_request: Mapped[CallbackRequest] = relationship(back_populates="caller", lazy="raise")


class CallbackAttempt(Base):
    """One try by the receiving body to call the caller back: when, and how it went.

    No free text, so the record grows no personal data beyond what the request holds.
    """

    __tablename__ = "callback_attempts"
    __table_args__ = (
        Index("ix_callback_attempts_request_attempted_at", "callback_request_id", "attempted_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    callback_request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("callback_requests.id"))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    result: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id"))
