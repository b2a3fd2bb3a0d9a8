"""One settings object, read from HANDOFF_* environment variables and an optional .env file."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

import limits
from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.months import Month

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HANDOFF_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite+aiosqlite:///var/handoff.db",
        description="SQLAlchemy async URL. SQLite (aiosqlite) by default; "
        "postgresql+asyncpg://... in production.",
    )
    routes_file: Path | None = Field(
        default=None,
        description="Optional TOML file that adds bodies and routes to the protocol's table.",
    )
    clock_skew_seconds: int = Field(
        default=120,
        description="How far in the future a client's timestamp may be before it is refused.",
    )
    email_backend: str = Field(
        default="file", description="Where outgoing email goes: file, smtp or console."
    )
    email_dir: Path = Field(
        default=Path("var/outbox"), description="Folder for .eml files (file backend)."
    )
    email_from: str = Field(
        default="handoff@localhost", description="From address of outgoing email."
    )
    email_templates_dir: Path = Field(
        default=PROJECT_ROOT / "email_templates",
        description="Folder of email templates. Each is read once per process: restart the "
        "service (and `handoff outbox work`) after changing one.",
    )
    public_url: str | None = Field(
        default=None,
        description="Where people reach handoff's pages, e.g. https://handoff.example.org. "
        "When set, the call back email ends with one extra line: a link to the request's "
        "page for the receiving team (its id only, no personal data). Unset: the email is "
        "exactly the protocol's.",
    )
    smtp_host: str = Field(default="localhost", description="SMTP relay host.")
    smtp_port: int = Field(default=25, description="SMTP relay port.")
    smtp_starttls: bool = Field(default=False, description="Upgrade the connection with STARTTLS.")
    smtp_tls: bool = Field(default=False, description="Connect with implicit TLS (port 465).")
    smtp_username: str | None = Field(default=None, description="SMTP login user, if any.")
    smtp_password: str | None = Field(default=None, description="SMTP login password, if any.")
    smtp_ca_file: Path | None = Field(
        default=None,
        description="CA certificates (PEM) to verify the relay's TLS certificate; "
        "the system's store when unset.",
    )
    smtp_timeout_seconds: float = Field(default=10.0, description="SMTP timeout.")
    smtp_connections: int = Field(
        default=4,
        ge=1,
        le=50,
        description="SMTP connections each outbox worker sends over at once (each worker "
        "process: `serve`'s workers and every `handoff outbox work`). Check how many "
        "connections the relay accepts from one client.",
    )
    outbox_worker_enabled: bool = Field(
        default=True, description="Run the outbox worker inside the web process."
    )
    outbox_poll_seconds: float = Field(default=2.0, description="Outbox poll interval.")
    outbox_lease_seconds: int = Field(
        default=120,
        ge=1,
        description="How long a worker's claim on a message lasts unless renewed; a live "
        "worker renews it every quarter of this while it holds the message, so it only runs "
        "out when the worker has died or lost the database. Then another worker sends it.",
    )
    outbox_max_attempts: int = Field(default=8, description="Attempts before a message is dead.")
    outbox_backoff_base_seconds: float = Field(
        default=30.0, description="First retry delay; doubles each attempt, with jitter."
    )
    callback_retention_days: int = Field(
        default=30,
        ge=0,
        description="Days after a call back request is closed before the caller's name, "
        "number and provider are purged. An open request keeps them (the receiving body "
        "needs them to call back), and so does one whose email is still waiting to be sent.",
    )
    open_callback_max_days: int = Field(
        default=90,
        ge=1,
        description="Days after which a call back request still open is listed for team "
        "leaders as stale (`GET /v1/callbacks?stale=true`, and a line on the report page) "
        "rather than purged: its caller's details stay until it is closed.",
    )
    purge_interval_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How often the outbox worker purges personal data that is due.",
    )
    no_outcome_after_seconds: int = Field(
        default=7200,
        gt=0,
        description="Seconds after a transfer's wait threshold before the outbox worker "
        "closes a transfer still waiting as `no_outcome_recorded`, so that no contact goes "
        "uncounted.",
    )
    session_secret: str | None = Field(
        default=None,
        description="Secret that signs web session cookies. Random per process when unset.",
    )
    secure_cookies: bool = Field(
        default=False, description="Mark session cookies Secure (set true behind HTTPS)."
    )
    hot_path: bool = Field(
        default=True,
        description="Serve the two hot operations (POST /v1/transfers and its /failed) "
        "without FastAPI's dependency solving when a request is plainly valid; the answers "
        "are the same either way. False sends every request through FastAPI's own handler.",
    )
    max_body_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        description="Largest request body accepted; larger ones get 413 before they are read.",
    )
    max_header_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        description="Largest request line plus headers accepted; larger ones get 431 and "
        "the connection is closed, having read no more than this.",
    )
    read_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A connection must send a request's line and headers within this many "
        "seconds of opening (or of its previous answer), and a body may pause no longer; "
        "otherwise it is closed (with 408 if a request had begun).",
    )
    rate_limit: str = Field(
        default="600/minute",
        description="Requests allowed per API key, in the `limits` notation "
        "(e.g. 600/minute, 20/second). Over it: 429 with Retry-After.",
    )
    rate_limit_redis_url: str | None = Field(
        default=None,
        description="redis://host:port/db to share the rate limit between workers and "
        "replicas. Unset: counted in each process (one worker only).",
    )
    idempotency_ttl_hours: int = Field(
        default=24,
        ge=24,
        description="How long an Idempotency-Key and its stored answer are kept (at least 24).",
    )
    first_report_month: str | None = Field(
        default=None,
        description="The first month (YYYY-MM) the service has a report for, e.g. the month "
        "it went live. Unset: the first month with any record. Months before it are never "
        "listed or called overdue.",
    )
    log_format: Literal["json", "text"] = Field(
        default="json",
        description="Log line format: json (one object a line, for collectors) or text.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Lowest level of log record written."
    )

    @field_validator("rate_limit")
    @classmethod
    def _a_rate(cls, value: str) -> str:
        limits.parse(value)  # ValueError for anything that is not e.g. "600/minute"
        return value

    @field_validator("public_url")
    @classmethod
    def _a_web_address(cls, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")) or any(c.isspace() for c in value):
            raise ValueError("give the address as https://host[/path], without spaces")
        return value

    @field_validator("first_report_month")
    @classmethod
    def _a_month(cls, value: str | None) -> str | None:
        return str(Month.parse(value.strip())) if value else None  # ValueError if not YYYY-MM

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _any_case(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        return value.upper() if info.field_name == "log_level" else value.lower()


@lru_cache
def get_settings() -> Settings:
    return Settings()
