"""Models are built by core.database's constructor: a column's value goes straight into the
new object's dict, a relationship through its events, and an unknown name is refused. What
the object holds when it is flushed is what the database stores."""

import uuid
from datetime import datetime

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.callbacks.models import CallbackRequest, CallerDetails
from app.core.clock import FixedClock
from app.core.database import make_sessionmaker


def test_an_unknown_keyword_is_refused() -> None:
    with pytest.raises(TypeError, match="'colour' is an invalid keyword argument for AuditEvent"):
        AuditEvent(colour="red")


def test_a_relationship_given_to_the_constructor_sets_both_sides() -> None:
    callback = CallbackRequest(id=uuid.uuid4())
    caller = CallerDetails(callback_request=callback, name="Ada", contact_number="+447911123456")
    assert callback.caller is caller  # back_populates: the relationship's events ran
    assert caller.name == "Ada"


async def test_what_the_object_holds_when_flushed_is_stored(app, clock: FixedClock) -> None:  # type: ignore[no-untyped-def]
    now: datetime = clock.now()
    record_id = uuid.uuid4()
    event = AuditEvent(
        org="cqc", actor="cli", action="create", record_type="transfer", record_id=record_id, at=now
    )
    event.org = "lgsco"  # changed after it was built, through the attribute as usual
    async with make_sessionmaker(app.state.engine)() as session:
        session.add(event)
        await session.commit()
    async with make_sessionmaker(app.state.engine)() as session:
        stored = (
            await session.execute(select(AuditEvent).where(AuditEvent.record_id == record_id))
        ).scalar_one()
    assert stored.org == "lgsco"
    assert stored.actor == "cli" and stored.at == now
    assert isinstance(stored.id, uuid.UUID)  # not given: the column's default, at the INSERT
