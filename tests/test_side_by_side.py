"""The report's independent reads, run side by side: the same answers as one after the other,
and on PostgreSQL all from the one moment the request's session exported."""

import asyncio

import asyncpg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import make_sessionmaker, tracking_commits
from app.core.side_by_side import side_by_side
from app.signposts.models import Signpost
from tests.helpers import count

SIGNPOST = {"to_org": "lgsco"}


async def signposts(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Signpost)) or 0)


async def test_the_reads_answer_in_order(app, client, cqc_agent) -> None:
    for _ in range(3):
        made = await client.post("/v1/signposts", json=SIGNPOST, headers=cqc_agent.headers)
        assert made.status_code == 201, made.text

    async def plus(n: int, session: AsyncSession) -> int:
        return await signposts(session) + n

    async with make_sessionmaker(app.state.engine)() as session:
        answers = await side_by_side(session, *(lambda s, n=n: plus(n, s) for n in range(4)))
    assert answers == [3, 4, 5, 6]


async def test_a_contact_made_while_the_reads_run_is_in_none_of_them(
    app, client, cqc_agent, is_postgres: bool
) -> None:
    if not is_postgres:
        pytest.skip("on SQLite the reads run one after the other in the session's transaction")
    first = await client.post("/v1/signposts", json=SIGNPOST, headers=cqc_agent.headers)
    assert first.status_code == 201, first.text

    async def after_another_contact(session: AsyncSession) -> int:
        made = await client.post("/v1/signposts", json=SIGNPOST, headers=cqc_agent.headers)
        assert made.status_code == 201, made.text
        return await signposts(session)

    async def later(session: AsyncSession) -> int:
        await asyncio.sleep(0.2)  # well after the other read's contact was committed
        return await signposts(session)

    async with make_sessionmaker(app.state.engine)() as session:
        answers = await side_by_side(session, after_another_contact, later)
    assert answers == [1, 1]
    assert await count(app, Signpost) == 2


async def test_a_failing_read_fails_the_whole(app) -> None:
    async def fails(session: AsyncSession) -> int:
        raise LookupError("no such figure")

    async with make_sessionmaker(app.state.engine)() as session:
        with pytest.raises(LookupError, match="no such figure"):
            await side_by_side(session, signposts, fails)


async def test_the_reads_commits_leave_the_requests_retry_open(app) -> None:
    """A request whose connection is found dead runs again only if it sent no COMMIT: the
    reads' own COMMITs (on their side connections) are not the request's."""
    async with make_sessionmaker(app.state.engine)() as session:
        with tracking_commits() as attempt:
            await side_by_side(session, signposts, signposts)
    assert attempt.committing is False


async def test_a_report_after_every_backend_was_terminated_is_read_again_not_refused(
    app, client, cqc_agent, cqc_leader, database_url: str, is_postgres: bool
) -> None:
    """The side pool's connections die with the main pool's (a PostgreSQL restart, say): the
    next report finds them dead, and is read again on fresh ones, as any request is."""
    if not is_postgres:
        pytest.skip("needs PostgreSQL: backends to terminate")
    made = await client.post("/v1/signposts", json=SIGNPOST, headers=cqc_agent.headers)
    assert made.status_code == 201, made.text
    path = f"/v1/reports/contact-volumes/{app.state.clock.now():%Y-%m}"
    first = await client.get(path, headers=cqc_leader.headers)
    assert first.status_code == 200, first.text
    real = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    admin = await asyncpg.connect(real)
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        )
    finally:
        await admin.close()
    assert killed >= 2, killed  # the main pool's and the side pool's
    again = await client.get(path, headers=cqc_leader.headers)
    assert again.status_code == 200, again.text
    assert again.json()["totals"] == first.json()["totals"]
