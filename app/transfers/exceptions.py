from app.core.errors import Conflict


def transfer_not_waiting(status: str) -> Conflict:
    return Conflict("transfer_not_waiting", f"The transfer is already {status}.")


def wait_threshold_exceeded(elapsed: float, threshold: int) -> Conflict:
    return Conflict(
        "wait_threshold_exceeded",
        f"The caller waited {elapsed:.0f} s, longer than the {threshold} s the protocol allows: "
        "request a call back instead.",
    )


def wait_threshold_not_reached(elapsed: float, threshold: int) -> Conflict:
    return Conflict(
        "wait_threshold_not_reached",
        f"The caller has waited {elapsed:.0f} s; a call back for waiting is due only after "
        f"{threshold} s. Use reason 'high_call_volume' if lines are busy.",
    )
