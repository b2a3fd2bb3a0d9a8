"""Request and response models of a call back request's life (app/callbacks/lifecycle.py)."""

from datetime import datetime

from pydantic import Field

from app.callbacks.lifecycle import AttemptResult, ReturnReason
from app.callbacks.models import CallbackAttempt
from app.core.validation import AwareDatetime, RequestModel, ResponseModel


class AttemptCreate(RequestModel):
    result: AttemptResult = Field(
        description="`reached` closes the request as reached; `wrong_number`, or the route's "
        "last allowed unsuccessful attempt, closes it as unreachable."
    )
    attempted_at: AwareDatetime | None = Field(
        default=None,
        description="When the caller was called. Defaults to now; not in the future, not "
        "before the request was made.",
    )


class CallbackReturn(RequestModel):
    reason: ReturnReason = Field(description="Why the request is not for the receiving body.")


class AttemptRead(ResponseModel):
    attempted_at: datetime
    result: AttemptResult

    @classmethod
    def build(cls, attempt: CallbackAttempt) -> "AttemptRead":
        return cls(attempted_at=attempt.attempted_at, result=AttemptResult(attempt.result))
