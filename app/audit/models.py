import uuid
from datetime import datetime

from sqlalchemy import Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UTCDateTime


class AuditEvent(Base):
    """Who did what to which record, and when. Ids and names of things only: no personal data.

    No foreign keys: an audit row outlives anything it mentions and costs one plain INSERT.
    """

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_org_at_id", "org", "at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    org: Mapped[str] = mapped_column(String(32))  # the body whose admins may read the row
    actor: Mapped[str] = mapped_column(String(16))  # key | cli | system
    actor_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    action: Mapped[str] = mapped_column(String(16))  # create | publish | revoke | purge
    record_type: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
