"""`handoff outbox …`: deliver and inspect outgoing email (added to `handoff` in app/cli.py)."""

import asyncio
import signal
import uuid
from collections.abc import Callable
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import Clock
from app.core.database import open_database
from app.core.errors import DomainError
from app.outbox import service
from app.outbox.kinds import KINDS
from app.outbox.models import DeliveryStatus
from app.outbox.worker import OutboxWorker

outbox_cli = typer.Typer(help="Deliver and inspect outgoing email.", no_args_is_help=True)

# Builds the worker with the email kinds and periodic jobs wired in: set by app/cli.py, which
# adds these commands to `handoff` (the outbox knows neither the kinds nor the jobs).
make_worker: Callable[[async_sessionmaker[AsyncSession]], OutboxWorker] | None = None


def _worker(sessionmaker: async_sessionmaker[AsyncSession]) -> OutboxWorker:
    if make_worker is None:
        raise RuntimeError("the outbox commands run from `handoff` (app/cli.py wires them)")
    return make_worker(sessionmaker)


@outbox_cli.command("work")
def outbox_work() -> None:
    """Deliver email until stopped (Ctrl-C or SIGTERM); `serve` also does this by default."""

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with open_database() as sessionmaker:
            await _worker(sessionmaker).run(stop)

    asyncio.run(run())


@outbox_cli.command("drain")
def outbox_drain() -> None:
    """Try every message that is due now once, report, and exit: 1 if any message is still
    unsent afterwards (retrying, pending or being sent) or this drain found one dead, else 0."""

    async def run() -> tuple[dict[DeliveryStatus, int], dict[DeliveryStatus, int]]:
        async with open_database() as sessionmaker:
            outcomes = dict(await _worker(sessionmaker).drain())
            async with sessionmaker() as session:
                return outcomes, await service.unsent(session)

    outcomes, unsent = asyncio.run(run())
    summary = ", ".join(f"{n} {status}" for status, n in sorted(outcomes.items())) or "nothing due"
    typer.echo(summary)
    if unsent:
        waiting = ", ".join(f"{n} {status}" for status, n in sorted(unsent.items()))
        typer.echo(f"still unsent: {waiting}")
    if unsent or any(status != DeliveryStatus.sent for status in outcomes):
        raise typer.Exit(1)


@outbox_cli.command("list")
def outbox_list(
    status: Annotated[DeliveryStatus | None, typer.Option(help="Only messages in this state.")] = (
        None
    ),
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Newest messages first: id, state, attempts, last error, recipient, record it is for."""

    async def run() -> None:
        async with open_database() as sessionmaker, sessionmaker() as session:
            typer.echo(
                f"{'outbox id':<36}  {'status':<8} {'n':>2}  {'last error':<20} "
                f"{'sent or next try (UTC)':<22}  {'kind':<30} {'record':<36}  to"
            )
            for m in await service.list_messages(session, status=status, limit=limit):
                record = m.subject_id
                when = f"{m.sent_at or m.next_attempt_at:%Y-%m-%d %H:%M:%S}Z"
                typer.echo(
                    f"{m.id}  {m.status:<8} {m.attempts:>2}  {m.last_error_code or '-':<20} "
                    f"{when:<22}  {KINDS.label(m.kind):<30} {record}  {m.to_address}"
                )

    asyncio.run(run())


@outbox_cli.command("retry")
def outbox_retry(
    message_id: Annotated[
        uuid.UUID, typer.Argument(help="Outbox id, or the call back request's or feedback's id.")
    ],
) -> None:
    """Queue a dead or retrying message again, due now, with all its attempts."""

    async def run() -> uuid.UUID:
        async with open_database() as sessionmaker, sessionmaker() as session:
            return (await service.retry(session, message_id, now=Clock().now())).id

    try:
        outbox_id = asyncio.run(run())
    except DomainError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"queued {outbox_id}")
