import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UTCDateTime


class WebSessionRecord(Base):
    """One signed-in web session. The cookie names it; signing out deletes it, so a copy of
    the cookie kept from before no longer signs anyone in.

    `flash` holds, for a few minutes at most, what a refused form typed and its problems, for
    the one GET of the form's page that shows them (POST/redirect/GET); that GET clears it."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_started_at", "started_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    key_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("api_keys.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    flash: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    flash_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
