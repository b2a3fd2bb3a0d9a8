"""Rendering pages: one Jinja environment, security headers, and HTML errors for page routes."""

import logging
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.exceptions import HTTPException

from app.core.api_route import Handler, SessionAPIRoute
from app.core.database import database_unavailable
from app.core.errors import RETRY_AFTER_SECONDS, DomainError
from app.core.months import LONDON, Month
from app.web import sessions
from app.web.messages import say
from app.web.sections import current

logger = logging.getLogger("handoff.web")

SECURITY_HEADERS = {
    # Scripts, styles and images from this origin only (no inline script); forms post here only.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _long_date(value: date) -> str:
    return f"{value:%A} {value.day} {value:%B %Y}"


def _uk_time(value: datetime | None) -> str:
    if value is None:
        return ""
    local = value.astimezone(LONDON)
    return f"{local.day} {local:%B %Y} at {local:%H:%M}"


def _uk_clock(value: datetime | str) -> str:
    """A time of day to the second, in the UK: when a stamp or a wait began."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return f"{moment.astimezone(LONDON):%H:%M:%S}"


def _iso_ms(value: datetime) -> str:
    """An instant for a script: UTC to the millisecond, which every browser's Date.parse reads."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _month_name(value: Month | str) -> str:
    month = Month.parse(value) if isinstance(value, str) else value
    return f"{month.first_day():%B %Y}"


def _signed(value: int) -> str:
    return f"+{value}" if value > 0 else ("\u2212" + str(-value) if value < 0 else "0")


def _percent(value: float | None) -> str:
    if value is None:
        return ""
    return f"+{value:.1f}%" if value > 0 else ("\u2212" + f"{-value:.1f}%" if value < 0 else "0%")


environment = Environment(
    loader=PackageLoader("app.web", "templates"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters.update(
    long_date=_long_date,
    uk_time=_uk_time,
    uk_clock=_uk_clock,
    iso_ms=_iso_ms,
    month_name=_month_name,
    signed=_signed,
    percent=_percent,
)


def with_headers(request: Request, response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    sessions.write(request, response)
    return response


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> Response:
    """A page from `template`, with what every page needs: the signed-in user, the sections
    they can see, and the CSRF token for its forms."""
    web_session = sessions.current(request)
    user = getattr(request.state, "web_user", None)
    page: dict[str, Any] = {
        "request": request,
        "user": user,
        "current_section": current(user.sections, request.url.path) if user else None,
        "csrf_token": web_session.csrf_token,
        **(context or {}),
    }
    html = environment.get_template(template).render(page)
    return with_headers(request, HTMLResponse(html, status_code=status))


def redirect(request: Request, url: str) -> Response:
    return with_headers(request, RedirectResponse(url, status_code=303))


class SignInRequired(Exception):
    pass


class PageError(Exception):
    """An error shown as a page: a heading and a sentence saying what to do."""

    def __init__(
        self, status: int, title: str, detail: str, link: tuple[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.link = link  # (address, words): where to go instead of the start page


def error_page(
    request: Request,
    status: int,
    title: str,
    detail: str,
    code: str = "",
    link: tuple[str, str] | None = None,
) -> Response:
    """An error as a page; `code`, if any, only in an attribute, for support; `link`, if any,
    the page to go to next, before the start page."""
    context = {"title": title, "detail": detail, "code": code, "link": link}
    return render(request, "error.html", context, status=status)


_HTTP_DETAILS = {
    404: "Check the address, or go to the start page.",
    405: "Go back to the page you were on and use its buttons.",
    413: "What you sent is too long. Go back, shorten it and try again.",
}


_TITLES = {
    400: "There is a problem with the request",
    401: "You need to sign in",
    403: "You cannot see this page",
    404: "Page not found",
    405: "There is a problem with the request",
    409: "This cannot be done yet",
    422: "There is a problem with the request",
}


def wants_page(request: Request) -> bool:
    """A browser asking for an address outside the API: it gets an HTML page, not JSON."""
    path = request.url.path
    if path == "/v1" or path.startswith("/v1/"):
        return False
    return "text/html" in request.headers.get("accept", "")


def http_error_page(request: Request, exc: HTTPException) -> Response:
    """An HTTP error (404 for an address no route serves, 405...) as a page in the site's
    layout, with the same status and headers (Allow)."""
    title = _TITLES.get(exc.status_code, "There is a problem")
    detail = _HTTP_DETAILS.get(exc.status_code, "Go back and try again.")
    page = error_page(request, exc.status_code, title, detail)
    for name, value in (getattr(exc, "headers", None) or {}).items():
        page.headers[name] = value
    return page


class PageAPIRoute(SessionAPIRoute):
    """A FastAPI route class whose errors are pages: sign-in redirects, 4xx pages, never
    problem+json."""

    async def run(self, request: Request, handler: Handler) -> Response:
        try:
            # The page's transaction, run again once if its connection was found dead.
            return await super().run(request, handler)
        except SignInRequired:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return redirect(request, f"/sign-in?next={quote(target, safe='')}")
        except PageError as exc:
            return error_page(request, exc.status, exc.title, exc.detail, link=exc.link)
        except DomainError as exc:  # the API's detail is for developers; this is for people
            title = _TITLES.get(exc.status, "There is a problem")
            return error_page(request, exc.status, title, say(exc.code) + ".", exc.code)
        except RequestValidationError as exc:
            if all(error.get("loc", ("",))[0] == "path" for error in exc.errors()):
                # /transfer/nonexistent: an address that names no page
                return error_page(request, 404, _TITLES[404], _HTTP_DETAILS[404])
            return error_page(
                request, 400, _TITLES[400], "Check the address or the form and try again."
            )
        except HTTPException as exc:
            return http_error_page(request, exc)
        except Exception as exc:
            if database_unavailable(exc):
                logger.warning("database unavailable: %s", type(exc).__name__)
                page = error_page(
                    request,
                    503,
                    "Sorry, the service is unavailable",
                    "Try again in a few minutes. If you were saving something, check whether "
                    "it was saved before you send it again.",
                )
                page.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
                return page
            # A bug: still a page, and the log says what type.
            logger.error("unhandled page error: %s", type(exc).__name__)
            return error_page(
                request,
                500,
                "Sorry, there is a problem with the service",
                "Try again later.",
            )
