import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, Integer, String, UniqueConstraint, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UTCDateTime


class DeliveryStatus(StrEnum):
    """Where the email stands: `pending` (not tried yet), `sending` (a worker holds it),
    `retrying` (a temporary failure; it is tried again later), `sent`, or `dead` (a permanent
    failure or no attempts left; an operator can queue it again)."""

    pending = "pending"
    sending = "sending"  # claimed by a worker until lease_expires_at
    retrying = "retrying"  # from next_attempt_at
    sent = "sent"
    dead = "dead"


class OutboxMessage(Base):
    """An email to send, written in the same transaction as the record it is about.

    It holds no body: the message is rendered when it is sent, from the record, so that
    purging the caller's details leaves no copy behind and the greeting fits the hour. The
    record is named by `kind` (registered in `app.outbox.kinds` by the package that owns it)
    and `subject_id`, with no foreign key: the outbox knows no sender's table. One message per
    record and kind.
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_messages_status_next_attempt_at", "status", "next_attempt_at"),
        # The messages waiting for their time, in the order they are claimed (service.claim).
        Index(
            "ix_outbox_messages_due",
            "next_attempt_at",
            "id",
            postgresql_where=text("status IN ('pending', 'retrying')"),
            sqlite_where=text("status IN ('pending', 'retrying')"),
        ),
        # Also the index for joining a record to its message (kind first, always given).
        UniqueConstraint("kind", "subject_id", name="uq_outbox_messages_kind_subject_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(32))  # a registered EmailKind's name
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid)  # the record it is about
    to_address: Mapped[str] = mapped_column(String(254))
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(16))  # pending|sending|retrying|sent|dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
