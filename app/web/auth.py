"""Signing in to the pages with an API key, and the dependency that guards each page."""

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request, Response
from sqlalchemy import select

from app.core.auth import Principal, Role, principal_for_secret
from app.core.deps import Session
from app.keys.models import ApiKey
from app.web import sessions
from app.web.models import WebSessionRecord
from app.web.pages import PageAPIRoute, PageError, SignInRequired, redirect, render
from app.web.sections import Section, visible_to


@dataclass(frozen=True)
class WebUser:
    principal: Principal
    name: str
    sections: list[Section]


async def _signed_in(request: Request, session: Session) -> WebUser | None:
    """The user of the session cookie, if its key still exists and is not revoked."""
    web_session = sessions.current(request)
    if web_session.key_id is None or web_session.session_id is None:
        return None
    row = (
        await session.execute(
            select(ApiKey.id, ApiKey.org, ApiKey.role, ApiKey.name)
            .join(WebSessionRecord, WebSessionRecord.key_id == ApiKey.id)
            .where(
                WebSessionRecord.id == web_session.session_id,
                ApiKey.id == web_session.key_id,
                ApiKey.revoked_at.is_(None),
            )
        )
    ).first()
    if row is None:
        sessions.renew(request, None)  # a signed-out session or a revoked key's ends here
        return None
    principal = Principal(row.id, row.org, Role(row.role))
    user = WebUser(principal, row.name, visible_to(principal))
    request.state.web_user = user
    return user


# Who a page is for, as people say it.
_ONLY_FOR = {
    Role.team_leader: "This page is for team leaders. Sign in with a team leader's key, or "
    "ask your team leader.",
    Role.agent: "This page is for advisers and team leaders. Sign in with your own key.",
    Role.admin: "This page is for administrators.",
    Role.relationship_owner: "This page is for relationship owners.",
}
_ONLY_FOR_REPORT_READERS = (
    "This page is for team leaders and relationship owners. Sign in with your own key."
)


def page_user(role: Role, *also: Role):  # type: ignore[no-untyped-def]
    """A page dependency: the signed-in user with `role` or above, or with one of the roles
    `also` names (a role outside the rank is let in only where it is named, as the API's
    `require` does), else sign-in or 403."""
    refused = _ONLY_FOR_REPORT_READERS if also else _ONLY_FOR[role]

    async def _dependency(request: Request, session: Session) -> WebUser:
        user = await _signed_in(request, session)
        if user is None:
            raise SignInRequired()
        if not any(user.principal.can(r) for r in (role, *also)):
            raise PageError(403, "You cannot see this page", refused)
        return user

    return _dependency


def check_csrf(request: Request, token: str | None) -> None:
    if not sessions.current(request).csrf_ok(token):
        raise PageError(
            403,
            "Your form has expired",
            "The form was out of date or came from another site. Go back, reload the page "
            "and try again.",
        )


TeamLeaderPage = Annotated[WebUser, Depends(page_user(Role.team_leader))]
AdviserPage = Annotated[WebUser, Depends(page_user(Role.agent))]
# The complete reports: relationship owners, and team leaders (and above), as in the API.
ReportReaderPage = Annotated[WebUser, Depends(page_user(Role.team_leader, Role.relationship_owner))]


def _safe_next(value: str | None) -> str | None:
    """Only a path on this site: never another host (//host, /\\host, https://...)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return None
    return value


router = APIRouter(route_class=PageAPIRoute, include_in_schema=False)


@router.get("/")
async def home(request: Request, session: Session) -> Response:
    user = await _signed_in(request, session)
    if user is None:
        return redirect(request, "/sign-in")
    return redirect(request, user.sections[0].path if user.sections else "/sign-in")


# A refused sign-in answers 303 to the form with one of these words in `problem` (never the
# key: it is not kept anywhere), so that reloading the page shows the error again and does not
# send the key a second time.
SIGN_IN_PROBLEMS = {
    "missing": "Enter your key",
    "unknown": "This key is not recognised or has been revoked. Check it and try again",
    "no-page": "This key cannot sign in here. Sign in with an adviser's or a team leader's key",
}


@router.get("/sign-in")
async def sign_in_form(
    request: Request, session: Session, next: str | None = None, problem: str | None = None
) -> Response:
    user = await _signed_in(request, session)
    if user is not None and user.sections:
        return redirect(request, _safe_next(next) or user.sections[0].path)
    error = SIGN_IN_PROBLEMS.get(problem or "")
    return render(request, "sign_in.html", {"next": _safe_next(next) or "", "error": error})


@router.post("/sign-in")
async def sign_in(
    request: Request,
    session: Session,
    key: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    check_csrf(request, csrf_token)
    target = _safe_next(next)
    principal = await principal_for_secret(session, key.strip()) if key.strip() else None
    problem = None
    if not key.strip():
        problem = "missing"
    elif principal is None:
        problem = "unknown"
    elif not visible_to(principal):  # a role no section is for (none today)
        problem = "no-page"
    if problem or principal is None:
        query = urlencode({"problem": problem or "unknown", **({"next": target} if target else {})})
        return redirect(request, f"/sign-in?{query}")
    await sessions.sign_in(request, session, principal.key_id)
    await session.commit()
    return redirect(request, target or visible_to(principal)[0].path)


@router.get("/sign-out")
async def back_from_sign_out(request: Request) -> Response:
    """Going back to the sign-out address does not sign out: it shows the start page."""
    return redirect(request, "/")


@router.post("/sign-out")
async def sign_out(
    request: Request, session: Session, csrf_token: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    check_csrf(request, csrf_token)
    await sessions.sign_out(request, session)
    await session.commit()
    return redirect(request, "/sign-in")
