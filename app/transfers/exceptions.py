from app.core.errors import Conflict


def transfer_not_waiting(status: str) -> Conflict:
    return Conflict("transfer_not_waiting", f"The transfer is already {status}.")


def outcome_too_late() -> Conflict:
    return Conflict(
        "outcome_too_late",
        "The transfer was closed as 'no_outcome_recorded'; its true outcome can be recorded "
        "only on the UK day the wait started.",
    )


def wait_threshold_not_reached(elapsed: float, threshold: int) -> Conflict:
    return Conflict(
        "wait_threshold_not_reached",
        f"The caller has waited {elapsed:.0f} s; a call back for waiting is due only after "
        f"{threshold} s. Use reason 'high_call_volume' if lines are busy.",
    )
