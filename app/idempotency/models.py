import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UTCDateTime


class IdempotencyKey(Base):
    """One Idempotency-Key of one API key, and the answer its first request got.

    Neither the key nor the body is stored as sent: `key_hash` is its sha256, and
    `response_body` is sealed with a key derived from the caller's API key secret and the
    Idempotency-Key, neither of which the database holds, so a copy of the database cannot
    read a caller's name out of a stored answer.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("api_key_id", "key_hash"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    api_key_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("api_keys.id", ondelete="CASCADE")
    )
    key_hash: Mapped[str] = mapped_column(String(64))
    # sha256 of method, path and body: the same key with another request is refused.
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # in_progress | completed
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_media_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
