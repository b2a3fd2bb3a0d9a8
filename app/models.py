"""Every table, imported once so that Alembic and the app see the same metadata."""

from app.audit.models import AuditEvent
from app.callbacks.models import CallbackAttempt, CallbackRequest, CallerDetails
from app.core.database import Base
from app.feedback.models import Feedback
from app.idempotency.models import IdempotencyKey
from app.keys.models import ApiKey
from app.outbox.models import OutboxMessage
from app.reports.models import ReportPublication
from app.reports.reminders import ReportNotice
from app.signposts.models import Signpost
from app.transfers.models import Transfer
from app.web.models import WebSessionRecord

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Base",
    "CallbackAttempt",
    "CallbackRequest",
    "CallerDetails",
    "Feedback",
    "IdempotencyKey",
    "OutboxMessage",
    "ReportNotice",
    "ReportPublication",
    "Signpost",
    "Transfer",
    "WebSessionRecord",
]
