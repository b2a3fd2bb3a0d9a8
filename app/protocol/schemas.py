from pydantic import BaseModel, Field

from app.protocol.routes import Body, IvrOption, RouteTable


class RouteRead(BaseModel):
    from_org: str
    to_org: str
    dial_number: str
    ivr_options: dict[str, IvrOption]
    wait_threshold_seconds: int
    sender_reference: str
    permission_to_share: str
    callback_mailbox: str
    reference_label: str
    greeting_team: str
    feedback_mailbox: str
    callback_first_attempt_within: float = Field(
        description="Working hours of the receiving body within which a call back is first tried"
    )
    callback_close_within: float = Field(
        description="Working hours of the receiving body within which a call back is closed"
    )
    callback_max_attempts: int = Field(
        description="Unsuccessful attempts before a call back closes as unreachable"
    )
    contact_reasons: dict[str, str] = Field(
        description="The `contact_reason` codes a transfer or signpost on this route may "
        "take, with their labels"
    )


class RouteTableRead(BaseModel):
    bodies: list[Body]
    routes: list[RouteRead]

    @classmethod
    def from_table(cls, table: RouteTable) -> "RouteTableRead":
        routes = []
        for route in table:
            sender, receiver = table.bodies[route.from_org], table.bodies[route.to_org]
            routes.append(
                RouteRead(
                    from_org=route.from_org,
                    to_org=route.to_org,
                    dial_number=route.dial_number,
                    ivr_options=route.ivr_options,
                    wait_threshold_seconds=route.wait_threshold_seconds,
                    sender_reference=route.sender_reference.value,
                    permission_to_share=route.permission_to_share.value,
                    callback_mailbox=route.callback_mailbox,
                    reference_label=sender.reference_label,
                    greeting_team=receiver.receiving_team,
                    feedback_mailbox=str(receiver.feedback_mailbox),
                    callback_first_attempt_within=route.callback_first_attempt_within,
                    callback_close_within=route.callback_close_within,
                    callback_max_attempts=route.callback_max_attempts,
                    contact_reasons=route.contact_reasons,
                )
            )
        return cls(bodies=list(table.bodies.values()), routes=routes)
