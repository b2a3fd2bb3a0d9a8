"""HANDOFF_PUBLIC_URL: the call back email may end with one line linking to the request's
page for the receiving team; unset, the email is the approved copy byte for byte
(tests/test_outbox_templates.py)."""

from datetime import UTC, datetime

import httpx
import pytest

from app.core.clock import FixedClock
from app.core.settings import Settings
from app.main import create_app
from app.protocol.routes import RouteTable
from tests.conftest import Keys
from tests.outbox_support import APPROVED, approval_copy, eml_files, parse, request_callback, worker


async def test_the_link_is_one_line_after_the_protocols_words(
    settings: Settings, clock: FixedClock, routes: RouteTable
) -> None:
    settings = settings.model_copy(update={"public_url": "https://handoff.example.org/"})
    settings = Settings.model_validate(settings.model_dump())  # through the validator
    app = create_app(settings, clock=clock, routes=routes)
    cqc = await Keys(app).make("cqc", "agent")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        callback_id = await request_callback(client, cqc, clock)
    clock.set(datetime(2026, 11, 10, 11, 59, 59, tzinfo=UTC))
    assert set(await worker(app, settings).drain()) == {"sent"}
    [message] = [parse(p.read_bytes()) for p in eml_files(settings.email_dir)]
    await app.state.engine.dispose()

    text, html = approval_copy(message)
    link = f"https://handoff.example.org/callbacks/{callback_id}"
    approved_text = (APPROVED / "callback_request_cqc_to_lgsco.txt").read_text(encoding="utf-8")
    assert text == approved_text + f"\nTo record your call back attempts in handoff, open: {link}\n"
    approved_html = (APPROVED / "callback_request_cqc_to_lgsco.html").read_text(encoding="utf-8")
    line = (
        f'<p>To record your call back attempts in handoff, open: <a href="{link}">{link}</a></p>\n'
    )
    before, after = approved_html.split("</body>")
    assert html == before + line + "</body>" + after
    # The address names the request by its id only.
    assert "Ada" not in link and "07911" not in link


@pytest.mark.parametrize("bad", ["handoff.example.org", "ftp://x", "https://a b"])
def test_the_public_url_is_a_web_address(bad: str) -> None:
    with pytest.raises(ValueError, match="https://host"):
        Settings(public_url=bad, _env_file=None)  # type: ignore[call-arg]


def test_a_blank_public_url_is_unset() -> None:
    assert Settings(public_url=" ", _env_file=None).public_url is None  # type: ignore[call-arg]
