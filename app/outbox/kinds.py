"""The kinds of email the outbox sends, each registered by the package that owns it.

The outbox is a mechanism: a message row names its `kind` and the id of the record it is
about (`subject_id`), and the kind says how to load those records for a batch, how to render
the message as of now, and whether a message can still be sent. The outbox itself knows no
sender by name; `app.wiring` registers the kinds once, where the app or a command is built.
"""

import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.outbox.rendering import Renderer


@dataclass(frozen=True)
class Envelope:
    """What the outbox row decides about a message, whatever its kind."""

    to_address: str
    message_id: str
    now: datetime  # the moment of sending: the greeting and the Date header


@dataclass(frozen=True)
class Refusal:
    """Why a message can no longer be sent (`handoff outbox retry` refuses with `code`)."""

    code: str
    reason: str  # a clause: "the caller's details were purged"


# The records of a batch, by subject id: a subject absent from the answer has no record.
Loader = Callable[[AsyncSession, list[uuid.UUID]], Awaitable[Mapping[uuid.UUID, Any]]]
RenderFn = Callable[[Renderer, Any, Envelope], EmailMessage]
CanSend = Callable[[AsyncSession, uuid.UUID], Awaitable[Refusal | None]]


async def _always(session: AsyncSession, subject_id: uuid.UUID) -> Refusal | None:
    return None


@dataclass(frozen=True)
class EmailKind:
    """One kind of email: `load` reads a batch's records in one session (a query or two for
    the whole batch, not one per message), `render` builds the message from one record (it may
    raise `CannotRender`), `refusal` says whether a message about `subject_id` can still be
    sent (None: it can). `label` names the kind in plain words for `handoff outbox list`
    (empty: the list shows `name`)."""

    name: str
    load: Loader
    render: RenderFn
    refusal: CanSend = _always
    label: str = ""


class UnknownKind(LookupError):
    pass


class KindRegistry:
    def __init__(self) -> None:
        self._kinds: dict[str, EmailKind] = {}

    def register(self, kind: EmailKind) -> EmailKind:
        """Add `kind`; registering the same kind again is harmless, another under its name is
        refused (two packages would be sending under one name)."""
        known = self._kinds.get(kind.name)
        if known is not None and known is not kind:
            raise ValueError(f"another email kind is already registered as {kind.name!r}")
        if len(kind.name) > 32:
            raise ValueError(f"email kind {kind.name!r} is longer than the column (32)")
        self._kinds[kind.name] = kind
        return kind

    def unregister(self, name: str) -> None:
        self._kinds.pop(name, None)

    @contextmanager
    def registered(self, kind: EmailKind) -> Iterator[EmailKind]:
        """`kind` registered for the block only (for tests)."""
        self.register(kind)
        try:
            yield kind
        finally:
            self.unregister(kind.name)

    def get(self, name: str) -> EmailKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise UnknownKind(name) from None

    def label(self, name: str) -> str:
        """`name`'s kind in plain words, or `name` itself (a kind without a label, or unknown)."""
        kind = self._kinds.get(name)
        return (kind.label if kind is not None else "") or name

    def names(self) -> list[str]:
        return sorted(self._kinds)


# The process's kinds: filled by app.wiring.wire().
KINDS = KindRegistry()
register = KINDS.register
