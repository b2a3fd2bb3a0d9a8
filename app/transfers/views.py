"""A transfer as its reader sees it now: one read model for the API and the pages.

Both show the number to dial, the IVR option, the moment a call back is due and whether the
wait is already over; they work it out here, once, from the transfer, the route table and
the request's "now".
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from math import ceil

from app.protocol.routes import IvrOption, Route, RouteTable
from app.transfers import service
from app.transfers.models import Transfer
from app.transfers.schemas import Dial, TransferRead, TransferStatus


@dataclass(frozen=True, slots=True)
class TransferView:
    transfer: Transfer
    route: Route | None  # None if the table no longer has the route
    ivr: IvrOption | None  # the route's option for the transfer's topic
    dial_number: str
    now: datetime
    deadline: datetime  # callback_required_after
    overdue: bool  # must_request_callback (the service's rule, never the page's)

    @property
    def seconds_left(self) -> int:
        return max(0, ceil((self.deadline - self.now).total_seconds()))

    @property
    def next_step(self) -> str:
        status = self.transfer.status
        if status == TransferStatus.connected:
            return "Done: the warm transfer is recorded."
        if status == TransferStatus.failed:
            return "Done: a call back request has been made."
        if status == TransferStatus.declined:
            return "Done: the caller did not want to be transferred."
        if status == TransferStatus.caller_hung_up:
            return "Done: the caller hung up while waiting."
        if status == TransferStatus.no_outcome_recorded:
            return "Closed with no outcome recorded; record the true outcome today if known."
        if self.overdue:
            return "The wait has passed the threshold: request a call back."
        return "Wait for an answer; record 'connected', or 'failed' if lines are busy."


def view_transfer(transfer: Transfer, routes: RouteTable, now: datetime) -> TransferView:
    route = routes.route(transfer.from_org, transfer.to_org)
    return TransferView(
        transfer=transfer,
        route=route,
        ivr=route.ivr_option(transfer.topic) if route else None,
        dial_number=route.dial_number if route else "",
        now=now,
        deadline=service.callback_required_after(transfer),
        overdue=service.must_request_callback(transfer, now),
    )


def transfer_read(view: TransferView, callback_id: uuid.UUID | None) -> TransferRead:
    """The API's answer for the transfer of `view`."""
    transfer = view.transfer
    return TransferRead(
        id=transfer.id,
        from_org=transfer.from_org,
        to_org=transfer.to_org,
        status=TransferStatus(transfer.status),
        topic=transfer.topic,
        dial=Dial(
            number=view.dial_number,
            ivr_option=transfer.ivr_option,
            ivr_label=view.ivr.label if view.ivr else None,
        ),
        sender_reference=transfer.sender_reference,
        wait_started_at=transfer.wait_started_at,
        wait_threshold_seconds=transfer.wait_threshold_seconds,
        callback_required_after=view.deadline,
        must_request_callback=view.overdue,
        next_step=view.next_step,
        permission_to_share_at=transfer.permission_to_share_at,
        connected_at=transfer.connected_at,
        failed_at=transfer.failed_at,
        failure_reason=transfer.failure_reason,  # type: ignore[arg-type]
        answered_after_threshold=transfer.answered_after_threshold,
        outcome_at=transfer.outcome_at,
        contact_reason=transfer.contact_reason,
        contact_reason_label=view.route.contact_reason_label(transfer.contact_reason)
        if view.route
        else None,
        callback_request_id=callback_id,
        created_at=transfer.created_at,
    )
