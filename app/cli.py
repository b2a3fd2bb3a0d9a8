"""`handoff`: the one command line for operators. Exit codes: 0 ok, 1 failed, 2 bad usage.

Every configuration value comes from HANDOFF_* environment variables (see
docs/OPERATIONS.md); `serve`'s options can be given either way.
"""

import asyncio
import json
import os
import shutil
import socket
import tempfile
import uuid
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.service import CLI
from app.core.auth import Role
from app.core.clock import Clock
from app.core.database import open_database
from app.core.settings import get_settings
from app.outbox import cli as outbox_commands
from app.outbox.cli import outbox_cli
from app.outbox.worker import OutboxWorker

cli = typer.Typer(
    help="handoff: warm transfers and call backs between two public bodies.",
    no_args_is_help=True,
    # An unexpected failure reaches main(), which prints one line (never a traceback, whose
    # frames and database errors can hold SQL parameters, secrets or a caller's details).
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
)
keys_cli = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
openapi_cli = typer.Typer(help="The OpenAPI document.", no_args_is_help=True)
report_cli = typer.Typer(help="The monthly contact-volume report.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")
cli.add_typer(openapi_cli, name="openapi")
cli.add_typer(report_cli, name="report")
cli.add_typer(outbox_cli, name="outbox")


def _outbox_worker(sessionmaker: async_sessionmaker[AsyncSession]) -> OutboxWorker:
    from app.protocol.routes import load_table
    from app.wiring import outbox_worker

    settings = get_settings()
    return outbox_worker(sessionmaker, settings, load_table(settings.routes_file), Clock())


outbox_commands.make_worker = _outbox_worker


@cli.callback()
def _wiring() -> None:
    """handoff: warm transfers and call backs between two public bodies."""
    from app.wiring import register

    register()  # every command sees the email kinds (e.g. `outbox retry` asks its kind)


DEFAULT_OPENAPI = Path("openapi/openapi.json")
# quickstart keeps its key's secret here (owner-readable only) so that each run reuses it.
QUICKSTART_KEY_FILE = Path("var/quickstart-key")
QUICKSTART_KEY_NAME = "quickstart"


@cli.command()
def migrate(revision: str = "head") -> None:
    """Bring the database schema up to date (run before starting a new version)."""
    from app.core.migrate import upgrade

    upgrade(get_settings().database_url, revision)
    typer.echo(f"database at {revision}")


@cli.command()
def serve(
    host: Annotated[
        str, typer.Option(envvar="HANDOFF_HOST", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="HANDOFF_PORT", help="Port to listen on.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1, envvar="HANDOFF_WORKERS", help="Worker processes (each with its own pool)."
        ),
    ] = 1,
) -> None:
    """Run the HTTP service with uvicorn (migrations are not run: use `handoff migrate`)."""
    import uvicorn

    if workers > 1 and not get_settings().session_secret:
        typer.echo(
            "warning: HANDOFF_SESSION_SECRET is not set, so each worker signs web sessions "
            "with its own random secret and team leaders will be signed out at random",
            err=True,
        )

    from app.core.observability import configure_logging

    configure_logging(get_settings())
    metrics_dir, made_here = _prepare_metrics_dir(workers)
    try:
        uvicorn.run(
            "app.asgi:app",
            host=host,
            port=port,
            workers=workers,
            proxy_headers=True,
            # Bounds the request head and times out silent clients (uvicorn does neither).
            http="app.core.http_protocol:HandoffHttpProtocol",
            access_log=False,  # the app writes its own, without query strings
            log_config=None,  # the app configures logging (HANDOFF_LOG_FORMAT, _LOG_LEVEL)
        )
    finally:
        if made_here and metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _prepare_metrics_dir(workers: int) -> tuple[str | None, bool]:
    """Switch on prometheus-client's multiprocess mode for several workers.

    Uses PROMETHEUS_MULTIPROC_DIR when set (emptied of the last run's files, as the client
    requires), else makes a temporary folder when there is more than one worker.
    """
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        for stale in Path(path).glob("*.db"):
            stale.unlink(missing_ok=True)
        return path, False
    if workers == 1:
        return None, False
    path = tempfile.mkdtemp(prefix="handoff-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path  # inherited by the worker processes
    return path, True


def _body_id(org: str) -> str:
    """The body named `org` in any case (`CQC`, `cqc`), as the route table spells it."""
    from app.protocol.routes import load_table

    bodies = list(load_table(get_settings().routes_file).bodies)
    for body in bodies:
        if body.casefold() == org.casefold():
            return body
    typer.echo(f"error: there is no body '{org}'; the bodies are {', '.join(bodies)}", err=True)
    raise typer.Exit(1)


async def _create_key(org: str, role: Role, name: str) -> tuple[str, str]:
    from app.keys import service
    from app.protocol.routes import load_table

    settings = get_settings()
    async with open_database(settings.database_url) as sessionmaker, sessionmaker() as session:
        key, secret = await service.create_key(
            session,
            load_table(settings.routes_file),
            org=org,
            role=role,
            name=name,
            now=Clock().now(),
            actor=CLI,
        )
        await session.commit()
        return str(key.id), secret


def _key_name(value: str) -> str:
    """--name under the API's rule for key names (KeyName), as a usage error (exit 2)."""
    from pydantic import TypeAdapter, ValidationError

    from app.core.validation import KeyName

    try:
        return str(TypeAdapter(KeyName).validate_python(value))
    except ValidationError as exc:
        raise typer.BadParameter(exc.errors()[0]["msg"]) from None


@keys_cli.command("create")
def keys_create(
    org: Annotated[
        str, typer.Option(help="Body the key belongs to, e.g. cqc or lgsco (in any case).")
    ],
    role: Annotated[Role, typer.Option(help="agent, team_leader or admin.")],
    name: Annotated[
        str,
        typer.Option(
            help="Who or what holds it, e.g. 'desk 12' (1-100 characters).", callback=_key_name
        ),
    ],
) -> None:
    """Create a key. The secret is printed once and never stored."""
    from app.core.errors import DomainError

    try:
        key_id, secret = asyncio.run(_create_key(_body_id(org), role, name))
    except DomainError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"id:     {key_id}\nsecret: {secret}\n(shown once: store it now)")


@keys_cli.command("list")
def keys_list(
    org: Annotated[
        str | None, typer.Option(help="Only this body's keys, e.g. cqc (in any case).")
    ] = None,
) -> None:
    """List keys (never their secrets), under a header row."""
    from app.keys import service

    body = _body_id(org) if org is not None else None

    def row(key_id: str, body: str, role: str, prefix: str, state: str, name: str) -> str:
        return f"{key_id:<36}  {body:<6} {role:<11} {prefix:<10} {state:<18} {name}"

    async def run() -> None:
        async with open_database() as sessionmaker, sessionmaker() as session:
            keys = await service.list_keys(session, body)
        typer.echo(row("ID", "BODY", "ROLE", "PREFIX", "STATE", "NAME"))
        for key in keys:
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            typer.echo(row(str(key.id), key.org, key.role, f"{key.key_prefix}…", state, key.name))

    asyncio.run(run())


@keys_cli.command("revoke")
def keys_revoke(key_id: uuid.UUID) -> None:
    """Revoke a key: requests with it are refused from now on."""
    from app.core.errors import DomainError
    from app.keys import service

    async def run() -> None:
        async with open_database() as sessionmaker, sessionmaker() as session:
            await service.revoke_key(session, key_id, now=Clock().now(), actor=CLI)
            await session.commit()

    try:
        asyncio.run(run())
    except DomainError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"revoked {key_id}")


@cli.command()
def purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what is due; change nothing.")
    ] = False,
) -> None:
    """Purge callers' names, numbers and providers that are past their retention time.

    Due: the call back request was closed more than HANDOFF_CALLBACK_RETENTION_DAYS ago and
    its email is no longer waiting to be sent (open requests keep them). The outbox
    worker does this hourly too; running it again is harmless. Exit 0 when done (also when
    nothing was due), 1 when it could not finish.
    """
    from app.housekeeping import retention

    settings = get_settings()

    async def run() -> int:
        async with open_database(settings.database_url) as sessionmaker:
            now = Clock().now()
            if dry_run:
                async with sessionmaker() as session:
                    return await retention.count_due(session, now, retention.Retention.of(settings))
            return await retention.purge_personal_data(sessionmaker, settings, now=now, actor=CLI)

    count = asyncio.run(run())
    verb = "due for purging" if dry_run else "purged"
    typer.echo(f"{count} call back request(s) {verb}")


def openapi_document() -> str:
    from app.main import create_app

    return json.dumps(create_app().openapi(), indent=2, sort_keys=True) + "\n"


@openapi_cli.command("export")
def openapi_export(
    output: Annotated[Path, typer.Option("--output", "-o")] = DEFAULT_OPENAPI,
) -> None:
    """Write the OpenAPI document that the app serves (checked for drift by the tests)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(openapi_document(), encoding="utf-8")
    typer.echo(f"wrote {output}")


@report_cli.command("due-dates")
def report_due_dates(
    year: Annotated[int, typer.Option(min=2000, max=2100, help="Year of the months reported.")],
) -> None:
    """When each month's report is due: the 10th working day of the following month."""
    from app.core.months import Month
    from app.reports.workdays import due_date

    for number in range(1, 13):
        month = Month(year, number)
        due = due_date(month)
        typer.echo(f"{month}  due {due.isoformat()} ({due:%A})")


def _port_is_free(host: str, port: int) -> bool:
    # Bound the way uvicorn binds (SO_REUSEADDR), so a recently closed port counts as free.
    try:
        with socket.create_server((host, port)):
            return True
    except OSError:
        return False


async def _is_active_cqc_agent_key(secret: str) -> bool:
    from app.core.auth import principal_for_secret

    async with open_database() as sessionmaker, sessionmaker() as session:
        principal = await principal_for_secret(session, secret)
    return principal is not None and (principal.body, principal.role) == ("cqc", Role.agent)


def _quickstart_secret(path: Path) -> tuple[str, bool]:
    """The quickstart's CQC agent key and whether it was made now: the one kept in `path`
    while it is still an active CQC agent key in this database, else a new one, kept there."""
    if path.is_file():
        secret = path.read_text(encoding="utf-8").strip()
        if asyncio.run(_is_active_cqc_agent_key(secret)):
            return secret, False
    _, secret = asyncio.run(_create_key("cqc", Role.agent, QUICKSTART_KEY_NAME))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(secret + "\n")
    return secret, True


@cli.command()
def quickstart(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Migrate, make a CQC agent key (or reuse the last one), print a first call, and serve.

    For trying it out (SQLite in var/). The key is kept in var/quickstart-key and reused.
    """
    if not _port_is_free(host, port):
        typer.echo(
            f"error: {host}:{port} is already in use (is handoff already running?). "
            "Stop what is using it, or choose another port with --port.",
            err=True,
        )
        raise typer.Exit(1)
    migrate("head")
    secret, made = _quickstart_secret(QUICKSTART_KEY_FILE)
    heading = "A new CQC agent key" if made else "Your CQC agent key from the last quickstart"
    typer.echo(
        f"\n{heading} (kept in {QUICKSTART_KEY_FILE} for the next run):\n"
        f"  {secret}\n\nFirst authenticated call, from another terminal:\n"
        f"  curl -H 'Authorization: Bearer {secret}' http://{host}:{port}/v1/routes\n"
    )
    serve(host=host, port=port, workers=1)


def describe_failure(exc: BaseException) -> str:
    """One line for an operator about a failure no command handled: what kind of failure it
    was, never its message when that can echo data (a database error carries the statement
    and its parameters)."""
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from app.core.errors import DomainError

    if isinstance(exc, DomainError):
        return exc.detail
    if isinstance(exc, DBAPIError):
        cause: BaseException = exc
        while cause.__cause__ is not None:  # the driver's own error, e.g. InvalidPasswordError
            cause = cause.__cause__
        return f"the database refused the request or could not be reached ({type(cause).__name__})"
    if isinstance(exc, SQLAlchemyError):
        return f"the database layer failed ({type(exc).__name__})"
    if isinstance(exc, OSError):
        if isinstance(exc.__cause__, OSError):  # DatabaseUnreachable wraps the driver's error
            exc = exc.__cause__
        # Connecting failed (refused, unknown host, timeout): the OS's words name the address.
        return f"could not connect ({type(exc).__name__}: {exc.strerror or 'no detail'})"
    return f"unexpected failure ({type(exc).__name__})"


def main() -> None:
    """The console script: exit 0 ok, 1 failed (one line on stderr), 2 bad usage."""
    try:
        cli()
    except Exception as exc:  # noqa: BLE001 - the one place every failure ends up
        typer.echo(f"error: {describe_failure(exc)}", err=True)
        raise SystemExit(1) from None
