"""What the pages say for each error code: one plain sentence that tells the adviser what to do.

The API keeps its stable codes and its developer-facing details; the pages never show either.
A code rides along in a `data-code` attribute for support. Every code the services, the request
models or the page forms can raise has a sentence here: tests/test_web_messages.py finds the
codes in the source and fails for one without a sentence, or for a sentence that shows a code.

A sentence may use {label} (the field as a sentence names it, "the caller's name"), {Label}
(the same, capitalised), {value} (what was typed), {body} (the other body as people say it,
"LGSCO"), {threshold} (the wait in seconds) and {limit} (a length limit).
"""

from collections.abc import Mapping
from typing import Any

# Codes raised by the services (DomainError), by the request models (PydanticCustomError and
# pydantic's own checks) and by the page forms themselves.
MESSAGES: dict[str, str] = {
    # The request models' field checks.
    "missing": "Enter {label}",
    "blank": "Enter {label}",
    "string_too_short": "Enter {label}",
    "too_short": "Enter {label}",
    "string_too_long": "{Label} must be {limit} characters or fewer",
    "too_long": "Enter no more than {limit} of {label}",
    "string_type": "Enter {label} as text",
    "list_type": "Enter {label}",
    "enum": "Select {label} from the list",
    "literal_error": "Select {label} from the list",
    "choose_one": "Select {label}",
    "model_type": "Enter {label}",
    "model_attributes_type": "Enter {label}",
    "extra_forbidden": "Something was sent that this form does not take. Reload the page and "
    "try again",
    "datetime_parsing": "Enter {label} as a date and time, like 10 November 2026 14:05",
    "datetime_from_date_parsing": "Enter {label} as a date and time, like 10 November 2026 14:05",
    "datetime_type": "Enter {label} as a date and time, like 10 November 2026 14:05",
    "invalid_characters": "{Label} must not contain hidden control characters or the "
    "characters =? together. Retype it",
    "invalid_reference": "Enter {label} using only letters, numbers, hyphens (-) and slashes "
    "(/), up to 32 characters",
    "invalid_phone_number": "{value} is not a number in use{where}. Check it with the caller",
    "naive_datetime": "Enter {label} as a date and time, like 10 November 2026 14:05",
    "invalid_month": "Enter a month like 2026-10",
    # The page forms' own checks of the times advisers type.
    "invalid_time": "Enter the time as hours and minutes, like 14:05",
    "invalid_datetime": "Enter {label} as a date and time, like 10 November 2026 14:05",
    "permission_not_readable": "Record the permission to share again",
    # Time rules shared by every record.
    "timestamp_in_future": "{Label} must be now or in the past",
    "timestamp_out_of_order": "{Label} must be after the caller started waiting",
    # Transfers.
    "no_route": "You cannot transfer callers to {body} from here. Choose a body from the list",
    "topic_required": "Select what the complaint is about",
    "unknown_topic": "Select what the complaint is about from the list",
    "topic_not_applicable": "Calls to {body} have no options to press. Leave what the "
    "complaint is about empty",
    "sender_reference_required": "Enter your case reference: {body} needs it for this call",
    "permission_to_share_required": "Record when the caller gave permission to share: press "
    "Permission given now, or type the time it was given",
    "permission_to_share_in_future": "The time permission was given must be now or earlier today",
    "permission_to_share_after_sharing": "Permission must be given before the call is "
    "connected. Check the time it was given",
    "transfer_not_waiting": "This call has already been recorded. Start again to transfer "
    "another caller",
    "outcome_too_late": "This call was closed with no outcome, and its outcome can only be "
    "changed on the day of the call",
    "unknown_contact_reason": "Select the reason for the call from the list",
    "conflicting_filters": "Choose either a reason or no reason given, not both",
    "unknown_status": "Select a status from the list",
    "unknown_outcome": "Select an outcome from the list",
    "wait_threshold_not_reached": "The caller has not waited {threshold} seconds yet. Keep "
    "waiting, or press Lines busy if the lines are busy",
    # Call back requests: their life after the email.
    "callback_closed": "This call back has already been closed, so it cannot change. Reload "
    "the page to see how it ended",
    "callback_already_acknowledged": "Someone else took this call back on a moment ago. Reload "
    "the page to see who, before you do anything else",
    "callback_receiving_body_only": "Only the team the call back was sent to can do this",
    # Feedback: its answer by the body it is about.
    "feedback_closed": "This feedback has already been answered, so it cannot change. Reload "
    "the page to see the answer",
    "feedback_already_acknowledged": "Someone in your team has already acknowledged this "
    "feedback. Reload the page to see it",
    "feedback_receiving_body_only": "Only the team the feedback is about can answer it",
    "callback_sending_body_only": "Only the team that asked for the call back can withdraw it",
    "precondition_failed": "Someone else changed this call back while you were looking at it. "
    "Reload the page and check it before you try again",
    "return_reason_required": "Select why this call back is not for your team",
    "concurrent_change": "Someone else changed this at the same moment. Reload the page and "
    "try again",
    # Reports.
    "month_not_ended": "You can sign this report once the month has ended",
    "publication_conflict": "Another team leader signed this report at the same moment. "
    "Reload the page and check it before you sign again",
    "already_signed": "Your body has already signed this version with these reasons. Change "
    "the reasons for fluctuations to sign a new version",
    "not_a_report_body": "Only the team leaders of the bodies in the report can sign it",
    "report_not_complete": "This report is not complete yet. Both bodies must sign it before "
    "you can read it",
    "report_version_not_found": "This report has no such version. Choose one from the list of "
    "published versions",
    # Records, keys and the API's own requests.
    "not_found": "We could not find this. Check the address, or start again",
    "unknown_org": "Choose a body from the list",
    "unauthenticated": "Sign in with your key to use this page",
    "invalid_api_key": "Your key is not recognised or has been withdrawn. Ask an "
    "administrator for a new one",
    "insufficient_role": "This page is for team leaders. Ask your team leader if you need "
    "something on it",
    "invalid_cursor": "This list has changed. Go back to its first page",
    "idempotency_key_reused": "This was sent twice with different details. Reload the page "
    "and check what was recorded",
    "idempotency_request_in_progress": "This is still being recorded. Wait a moment, then "
    "reload the page",
    "invalid_idempotency_key": "This request could not be read. Reload the page and try again",
    "idempotency_answer_not_kept": "This was recorded earlier. Reload the page to see what "
    "was recorded",
    "database_unavailable": "Sorry, the service is unavailable. Try again in a few minutes",
    "rate_limited": "Too many requests were sent in a short time. Wait a minute, then try again",
    "caller_details_purged": "The caller's details have been deleted, as the retention rules "
    "require, so this email cannot be sent",
    "already_sent": "This email has already been sent",
    "being_sent": "This email is being sent now. Reload the page in a minute",
    "unknown_kind": "This version of the service cannot send this email. Ask the service's "
    "operators",
}

FALLBACK = "Check {label} and try again"
FALLBACK_WHOLE_FORM = "Something in the form is not right. Check it and try again"


class _Context(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return {
            "label": "this",
            "Label": "This",
            "value": "This",
            "body": "the other body",
            "threshold": "enough",
            "limit": "fewer",
            "where": " in the UK",
        }.get(key, "")


def say(code: str, context: Mapping[str, Any] | None = None) -> str:
    """The sentence for `code`, filled in from `context` (label, value, body, threshold…)."""
    values = _Context({k: v for k, v in (context or {}).items() if v is not None})
    if "label" in values and "Label" not in values:
        label = str(values["label"])
        values["Label"] = label[:1].upper() + label[1:]
    template = MESSAGES.get(code) or (FALLBACK if "label" in values else FALLBACK_WHOLE_FORM)
    return template.format_map(values)
