"""The monthly report's reminders and completion notices, as the mailboxes see them: "due in 3
working days" and "overdue" to each body's team leaders, once each, at their moments and not
for a complete month; "complete" to the relationship owners, once per version; no personal
data; two workers at once and a restart send nothing twice; `handoff outbox list` names them.

The worker is the one `app.wiring` builds, sending to a real SMTP server (aiosmtpd); the clock
is moved, nothing sleeps. October 2026's report is due on Friday 13 November 2026."""

import asyncio
from collections import Counter
from datetime import UTC, date, datetime
from email.message import EmailMessage

import httpx
import pytest
from sqlalchemy import delete, func, select
from typer.testing import CliRunner

from app.cli import cli
from app.core.clock import FixedClock
from app.core.database import make_engine, make_sessionmaker
from app.core.months import Month
from app.core.settings import Settings, get_settings
from app.outbox.models import OutboxMessage
from app.protocol.routes import RouteTable, load_table
from app.reports.reminders import (
    ReportNotice,
    due_soon_day,
    queue_report_notices,
    reminder_due,
)
from app.reports.workdays import due_date
from app.signposts.models import Signpost
from app.wiring import outbox_worker
from tests.conftest import Key
from tests.events import Contacts
from tests.helpers import CALLER
from tests.outbox_support import SmtpServer, approval_copy, assert_approved, request_callback

OCT = "2026-10"
CQC_LEADERS = "NCSCConcernsTeamTMs@cqc.org.uk"  # the seeds name no report mailbox: feedback's
LGSCO_LEADERS = "intakemanagers@lgo.org.uk"
CQC_OWNERS = "partnerships@cqc.example.org"  # LGSCO names no relationship owners
COMPLETE_WORDS = "It is complete when both bodies have signed it in handoff."


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def routes() -> RouteTable:
    """The seeds, with relationship owners at CQC only."""
    table = load_table()
    bodies = dict(table.bodies)
    bodies["cqc"] = bodies["cqc"].model_copy(update={"relationship_owner_mailbox": CQC_OWNERS})
    return RouteTable(bodies, table.routes)


@pytest.fixture(autouse=True)
async def in_use_since_september(client, clock: FixedClock, cqc_agent: Key) -> None:
    """The service's first record is a signpost in September 2026: its reports are due from
    then (no reminders are sent for months before the first record)."""
    await Contacts(client, clock).signpost(cqc_agent, "lgsco", at("2026-09-15T10:00:00"))


@pytest.fixture
def smtp_server():  # type: ignore[no-untyped-def]
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp(settings: Settings, smtp_server: SmtpServer) -> Settings:
    return smtp_server.settings(settings, public_url="https://handoff.example.org")


class Rounds:
    """Worker rounds as the running service does them: its periodic jobs, then the emails."""

    def __init__(self, app, settings: Settings, clock: FixedClock, server: SmtpServer) -> None:  # type: ignore[no-untyped-def]
        self.app, self.settings, self.clock, self.server = app, settings, clock, server
        self.restart()

    def restart(self) -> None:
        """A new worker, as after a restart: its jobs are due at its first round."""
        self.worker = outbox_worker(
            self.app.state.sessionmaker, self.settings, self.app.state.routes, self.clock
        )

    async def at(self, when: str) -> list[EmailMessage]:
        """One round at `when` (UTC); the messages the mail server received in it."""
        self.clock.set(at(when))
        before = len(self.server.received)
        await self.worker.run_due_jobs()
        outcomes = await self.worker.drain()
        assert set(outcomes) <= {"sent"}, outcomes
        return [r.message for r in self.server.received[before:]]


@pytest.fixture
def rounds(app, smtp: Settings, clock: FixedClock, smtp_server: SmtpServer) -> Rounds:  # type: ignore[no-untyped-def]
    return Rounds(app, smtp, clock, smtp_server)


def about(messages: list[EmailMessage], month_name: str) -> list[tuple[str, str]]:
    """(recipient, subject) of the messages about `month_name`, sorted."""
    return sorted((m["To"], m["Subject"]) for m in messages if month_name in m["Subject"])


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return part.get_content()  # type: ignore[attr-defined,no-any-return]


async def publish(
    client: httpx.AsyncClient,
    clock: FixedClock,
    leader: Key,
    when: str,
    other: Key,
    note: str = "A quiet month.",
) -> int:
    """`leader` signs October's report for their body with `note`, then `other` signs it for
    theirs: the version is complete at `when`. Returns its number."""
    clock.set(at(when))
    version = 0
    for key, body_note in ((leader, note), (other, "Steady.")):
        response = await client.post(
            f"/v1/reports/contact-volumes/{OCT}/sign",
            json={"fluctuation_note": body_note},
            headers=key.headers,
        )
        assert response.status_code == 201, response.text
        version = int(response.json()["publication"]["version"])
    return version


DUE_SOON = "The contact-volume report for October 2026 is due in 3 working days"
OVERDUE = "The contact-volume report for October 2026 is overdue"


def test_due_soon_is_three_working_days_before_the_due_date() -> None:
    october = Month(2026, 10)
    assert due_date(october) == date(2026, 11, 13)  # a Friday
    assert due_soon_day(october) == date(2026, 11, 10)  # Tuesday: Wed, Thu, Fri to go
    # Over a weekend: September's report is due on Wednesday 14 October 2026.
    assert due_date(Month(2026, 9)) == date(2026, 10, 14)
    assert due_soon_day(Month(2026, 9)) == date(2026, 10, 9)  # the Friday before
    assert reminder_due(october, date(2026, 11, 9)) is None
    assert reminder_due(october, date(2026, 11, 13)) == "due_soon"  # due that day: not late
    assert reminder_due(october, date(2026, 11, 14)) == "overdue"


async def test_due_soon_and_overdue_reach_both_bodies_team_leaders_once_each(
    rounds: Rounds,
) -> None:
    assert about(await rounds.at("2026-11-09T16:00:00"), "October 2026") == []

    # Tuesday 10 November, just after midnight in London.
    due_soon = await rounds.at("2026-11-10T00:05:00")
    assert about(due_soon, "October 2026") == [(CQC_LEADERS, DUE_SOON), (LGSCO_LEADERS, DUE_SOON)]
    for message in due_soon:
        if "October" in message["Subject"]:
            assert "is due on Friday 13 November 2026, in 3 working days" in text_of(message)
            assert COMPLETE_WORDS in text_of(message)
            assert "https://handoff.example.org/reports/2026-10" in text_of(message)

    # Later rounds of the same worker, and a restarted one, up to the end of the due date.
    assert about(await rounds.at("2026-11-12T09:00:00"), "October 2026") == []
    rounds.restart()
    assert about(await rounds.at("2026-11-13T23:59:00"), "October 2026") == []

    # Saturday, the day after the due date (at the job's next round: it runs every 5 minutes).
    overdue = await rounds.at("2026-11-14T00:05:00")
    assert about(overdue, "October 2026") == [(CQC_LEADERS, OVERDUE), (LGSCO_LEADERS, OVERDUE)]
    [one, *_] = [m for m in overdue if "October" in m["Subject"]]
    assert "was due on Friday 13 November 2026 and it is not complete yet" in text_of(one)
    assert COMPLETE_WORDS in text_of(one)

    rounds.restart()
    assert about(await rounds.at("2026-11-16T09:00:00"), "October 2026") == []
    assert about(await rounds.at("2026-11-30T09:00:00"), "October 2026") == []


async def test_a_worker_down_across_the_due_soon_window_sends_only_the_overdue_once(
    rounds: Rounds,
) -> None:
    # The first round in November comes after October's due date: no late "due soon".
    late = await rounds.at("2026-11-17T10:00:00")
    assert about(late, "October 2026") == [(CQC_LEADERS, OVERDUE), (LGSCO_LEADERS, OVERDUE)]
    # September's (due in October, never complete) goes late too, once.
    september = "The contact-volume report for September 2026 is overdue"
    assert about(late, "September 2026") == [(CQC_LEADERS, september), (LGSCO_LEADERS, september)]
    rounds.restart()
    again = await rounds.at("2026-11-18T10:00:00")
    assert about(again, "October 2026") == about(again, "September 2026") == []


async def test_a_new_installation_gets_no_reminders_for_the_months_before_its_first_record(
    app, smtp: Settings, clock: FixedClock, smtp_server: SmtpServer, cqc_agent: Key, client
) -> None:
    async with app.state.sessionmaker() as session:  # undo the autouse September signpost
        await session.execute(delete(Signpost))
        await session.commit()
    fresh = Rounds(app, smtp, clock, smtp_server)
    assert await fresh.at("2026-11-16T09:00:00") == []  # nothing recorded at all
    # The first record is in October: October's report is overdue, September's is none.
    await Contacts(client, clock).signpost(cqc_agent, "lgsco", at("2026-10-20T10:00:00"))
    fresh.restart()
    sent = await fresh.at("2026-11-16T10:00:00")
    assert about(sent, "2026") == [(CQC_LEADERS, OVERDUE), (LGSCO_LEADERS, OVERDUE)]


async def test_no_reminder_for_a_complete_month_and_its_owners_are_told_it_was_on_time(
    client, rounds: Rounds, clock: FixedClock, lgsco_leader: Key, cqc_leader: Key
) -> None:
    await publish(client, clock, lgsco_leader, "2026-11-05T11:00:00", cqc_leader)

    completed = await rounds.at("2026-11-05T11:10:00")
    subject = "The contact-volume report for October 2026 is complete (version 1)"
    # CQC's relationship owners; LGSCO names none, so nobody at LGSCO gets a notice.
    assert about(completed, "October 2026") == [(CQC_OWNERS, subject)]
    [notice] = [m for m in completed if "October" in m["Subject"]]
    text = text_of(notice)
    assert "Version 1 of the contact-volume report for October 2026 is complete." in text
    assert "It was completed on Thursday 5 November 2026, on time" in text
    assert "https://handoff.example.org/reports/2026-10?version=1" in text

    for when in ("2026-11-10T09:00:00", "2026-11-14T09:00:00", "2026-11-20T09:00:00"):
        rounds.restart()
        assert about(await rounds.at(when), "October 2026") == []


async def test_a_late_version_and_a_second_version_each_reach_the_owners_once(
    client, rounds: Rounds, clock: FixedClock, cqc_leader: Key, lgsco_leader: Key
) -> None:
    assert len(about(await rounds.at("2026-11-14T09:00:00"), "October 2026")) == 2  # overdue
    assert await publish(client, clock, cqc_leader, "2026-11-16T10:00:00", lgsco_leader) == 1

    [late] = [m for m in await rounds.at("2026-11-16T10:30:00") if "October" in m["Subject"]]
    assert late["To"] == CQC_OWNERS
    assert "It was completed on Monday 16 November 2026, late" in text_of(late)

    assert (
        await publish(client, clock, cqc_leader, "2026-11-17T10:00:00", lgsco_leader, "Busier.")
        == 2
    )
    rounds.restart()
    [second] = [m for m in await rounds.at("2026-11-17T10:30:00") if "October" in m["Subject"]]
    assert second["Subject"] == "The contact-volume report for October 2026 is complete (version 2)"
    assert "?version=2" in text_of(second)
    rounds.restart()
    assert about(await rounds.at("2026-11-18T10:30:00"), "October 2026") == []


async def test_the_notices_match_their_approved_copies(
    app,
    client,
    settings: Settings,
    clock: FixedClock,
    smtp_server: SmtpServer,
    cqc_leader: Key,
    lgsco_leader: Key,
) -> None:
    # As sent with HANDOFF_PUBLIC_URL unset: they say where to find the report instead.
    plain = Rounds(app, smtp_server.settings(settings), clock, smtp_server)
    due_soon = await plain.at("2026-11-10T09:30:00")  # 09:30 GMT: morning
    overdue = await plain.at("2026-11-16T13:00:00")  # afternoon
    await publish(client, clock, cqc_leader, "2026-11-17T10:00:00", lgsco_leader)
    completed = await plain.at("2026-11-17T10:05:00")

    for name, messages, to in [
        ("report_due_soon", due_soon, LGSCO_LEADERS),
        ("report_overdue", overdue, CQC_LEADERS),
        ("report_completed", completed, CQC_OWNERS),
    ]:
        [message] = [m for m in messages if "October" in m["Subject"] and m["To"] == to]
        text, html = approval_copy(message)
        assert_approved(f"{name}.txt", text)
        assert_approved(f"{name}.html", html)


async def test_the_notices_carry_no_personal_data(
    app,
    client,
    rounds: Rounds,
    clock: FixedClock,
    cqc_agent: Key,
    cqc_leader: Key,
    key_factory,
) -> None:
    clock.set(at("2026-10-20T10:00:00"))
    await request_callback(client, cqc_agent, clock, reference="CQC-4242")  # a caller in October
    leader = await key_factory.make("lgsco", "team_leader", name="Ada Lovelace")
    sent = await rounds.at("2026-11-10T09:00:00")  # the call back request and the due soon
    sent += await rounds.at("2026-11-16T09:00:00")  # overdue
    await publish(client, clock, leader, "2026-11-17T09:00:00", cqc_leader)
    sent += await rounds.at("2026-11-17T09:30:00")  # completed

    notices = [m for m in sent if "contact-volume report" in m["Subject"]]
    kinds = {m["Subject"].rsplit(" is ", 1)[1] for m in notices if "October" in m["Subject"]}
    assert kinds == {"due in 3 working days", "overdue", "complete (version 1)"}
    for message in notices:
        raw = message.as_string()
        for personal in [*CALLER.values(), "CQC-4242", "Ada Lovelace", "Lovelace"]:
            assert personal not in raw, (personal, message["Subject"])


@pytest.mark.parametrize("restart_between", [False, True])
async def test_two_workers_at_once_send_each_notice_exactly_once(
    app,
    client,
    smtp: Settings,
    clock: FixedClock,
    smtp_server: SmtpServer,
    database_url: str,
    cqc_leader: Key,
    lgsco_leader: Key,
    restart_between: bool,
) -> None:
    """Two workers, each with its own engine (as two processes), run their jobs and send at the
    same moments; then again after a restart: every notice reaches its mailbox once."""
    engines = [make_engine(database_url), make_engine(database_url)]

    def workers():  # type: ignore[no-untyped-def]
        return [
            outbox_worker(make_sessionmaker(engine), smtp, app.state.routes, clock, owner=f"w{i}")
            for i, engine in enumerate(engines)
        ]

    async def together(the_workers, when: str) -> None:  # type: ignore[no-untyped-def]
        clock.set(at(when))
        await asyncio.gather(*(w.run_due_jobs() for w in the_workers))
        await asyncio.gather(*(w.drain() for w in the_workers))

    try:
        pair = workers()
        await together(pair, "2026-11-10T09:00:00")  # October due soon, September overdue
        await together(pair if not restart_between else workers(), "2026-11-10T09:10:00")
        await together(pair, "2026-11-16T09:00:00")  # October overdue
        await publish(client, clock, cqc_leader, "2026-11-17T09:00:00", lgsco_leader)
        await together(workers(), "2026-11-17T09:10:00")  # October complete
        await together(workers(), "2026-11-18T09:10:00")
    finally:
        for engine in engines:
            await engine.dispose()

    received = Counter((r.message["To"], r.message["Subject"]) for r in smtp_server.received)
    assert set(received.values()) == {1}, received
    assert sorted(received) == sorted(
        [
            (CQC_LEADERS, DUE_SOON),
            (LGSCO_LEADERS, DUE_SOON),
            (CQC_LEADERS, OVERDUE),
            (LGSCO_LEADERS, OVERDUE),
            (CQC_LEADERS, "The contact-volume report for September 2026 is overdue"),
            (LGSCO_LEADERS, "The contact-volume report for September 2026 is overdue"),
            (CQC_OWNERS, "The contact-volume report for October 2026 is complete (version 1)"),
        ]
    )
    async with app.state.sessionmaker() as session:
        notices = await session.scalar(select(func.count()).select_from(ReportNotice))
        messages = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.kind.like("report_%"))
        )
    assert notices == messages == 7


async def test_the_notices_queued_at_the_same_instant_by_many_tasks_are_queued_once(
    app, smtp: Settings, clock: FixedClock, database_url: str
) -> None:
    """The race itself: six jobs on three engines queue the same notices at one instant."""

    clock.set(at("2026-11-10T09:00:00"))
    engines = [make_engine(database_url) for _ in range(3)]
    try:
        queued = await asyncio.gather(
            *(
                queue_report_notices(make_sessionmaker(e), app.state.routes, clock.now())
                for e in engines * 2
            )
        )
    finally:
        for engine in engines:
            await engine.dispose()
    assert sum(queued) == 4, queued  # October due soon and September overdue, two mailboxes


async def test_handoff_outbox_list_shows_the_notices_in_plain_words(
    rounds: Rounds, database_url: str, smtp: Settings
) -> None:
    await rounds.at("2026-11-10T09:00:00")
    env = {"HANDOFF_DATABASE_URL": database_url, "HANDOFF_EMAIL_BACKEND": "file"}

    def invoke() -> tuple[int, str]:
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(cli, ["outbox", "list"], env=env)
        finally:
            get_settings.cache_clear()
        return result.exit_code, result.output

    code, output = await asyncio.to_thread(invoke)
    assert code == 0, output
    header, *rows = output.splitlines()
    assert len(rows) == 4
    kinds = Counter(row[header.index("kind") : header.index("record")].strip() for row in rows)
    assert kinds == {"Report due in 3 working days": 2, "Report overdue": 2}
    assert "report_due_soon" not in output
    assert all(row.rstrip().endswith(("@cqc.org.uk", "@lgo.org.uk")) for row in rows)
