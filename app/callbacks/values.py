"""What a call back request is made of, as values: why the transfer failed and the caller's
details. Transfers import them from here (a failed transfer makes a call back request)."""

from enum import StrEnum

from app.core.validation import CallerName, PhoneNumber, ProviderName, RequestModel


# Why the warm transfer failed and a call back is requested instead. (A comment, not a
# docstring: a docstring would enter the OpenAPI document.)
class FailureReason(StrEnum):
    wait_threshold_exceeded = "wait_threshold_exceeded"
    high_call_volume = "high_call_volume"


class Caller(RequestModel):
    """The only caller details the protocol lets one body send the other."""

    name: CallerName
    contact_number: PhoneNumber
    provider: ProviderName
