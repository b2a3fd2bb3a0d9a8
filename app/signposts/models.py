import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UTCDateTime


class Signpost(Base):
    """A caller told to contact the other body, without a transfer. No personal data."""

    __tablename__ = "signposts"
    __table_args__ = (
        Index("ix_signposts_signposted_at", "signposted_at"),
        Index("ix_signposts_from_org_created_at", "from_org", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    from_org: Mapped[str] = mapped_column(String(32))
    to_org: Mapped[str] = mapped_column(String(32))
    signposted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sender_reference: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # One of the receiving body's contact reasons (app/protocol), or none.
    contact_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_by_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
