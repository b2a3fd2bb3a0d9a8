import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Uuid, text
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
