"""The feedback pages of issue 17: LGSCO's "Feedback about us" lists a CQC feedback, an LGSCO
adviser acknowledges and answers it on its page (errors all at once, values kept,
POST/redirect/GET), and the CQC adviser's page of it shows the answer."""

import html
import re

import httpx

from tests.conftest import Key
from tests.test_signposts_feedback import FEEDBACK
from tests.test_web_advisers import field_error, nav, post_form, shown
from tests.test_web_navigation import visible_text
from tests.test_web_reports import sign_in


async def _feedback(client: httpx.AsyncClient, cqc_agent: Key) -> str:
    made = await client.post("/v1/feedback", json=FEEDBACK, headers=cqc_agent.headers)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _no_codes(page: httpx.Response) -> None:
    """No code, snake_case or internal state name among the words a person reads."""
    words = visible_text(page)
    for code in ("feedback_", "remedial_action", "training_issue", "responded"):
        assert code not in words, (code, words)


async def test_lgsco_answers_a_cqc_feedback_and_cqc_sees_the_answer(
    client: httpx.AsyncClient, cqc_agent: Key, lgsco_agent: Key
) -> None:
    feedback_id = await _feedback(client, cqc_agent)
    page_path = f"/feedback/{feedback_id}"

    await sign_in(client, lgsco_agent)
    listed = await client.get("/feedback/incoming")
    assert listed.status_code == 200
    assert nav(listed)[-1] == "Feedback about us"
    assert 'aria-current="page">Feedback about us' in listed.text
    assert 'aria-current="page">Misdirection feedback' not in listed.text
    assert f'href="{page_path}"' in listed.text and ">New</strong>" in listed.text
    _no_codes(listed)

    page = await client.get(page_path)
    assert "Feedback from the Care Quality Commission" in html.unescape(page.text)
    acked = await post_form(client, f"{page_path}/acknowledge", page_path)
    assert acked.status_code == 303 and acked.headers["location"] == page_path
    page = await client.get(page_path)
    assert ">Acknowledged</strong>" in page.text and 'id="acknowledge"' not in page.text

    # Nothing filled in: both problems at once, in plain words.
    refused = await shown(client, await post_form(client, f"{page_path}/response", page_path))
    assert "There is a problem" in refused.text
    assert field_error(refused, "remedial_action") == "Error: Enter the remedial action taken"
    assert field_error(refused, "training_issue") == "Error: Select whether it was a training issue"
    _no_codes(refused)

    # The text typed is kept when the choice is missing.
    kept = await shown(
        client,
        await post_form(
            client, f"{page_path}/response", page_path, remedial_action="Briefed the team"
        ),
    )
    assert ">Briefed the team</textarea>" in kept.text
    assert "remedial_action-error" not in kept.text

    sent = await post_form(
        client,
        f"{page_path}/response",
        page_path,
        remedial_action="Briefed the team on fees",
        training_issue="yes",
    )
    assert sent.status_code == 303 and sent.headers["location"] == page_path
    answered = await client.get(page_path)
    assert ">Answered</strong>" in answered.text and 'id="send-answer"' not in answered.text
    assert "Briefed the team on fees" in answered.text
    # A reload of the address the form posted to shows the page again, never sends it again.
    back = await client.get(f"{page_path}/response")
    assert back.status_code == 303 and back.headers["location"] == page_path
    # Sent again (an old tab): refused in plain words.
    again = await shown(
        client,
        await post_form(
            client, f"{page_path}/response", page_path, remedial_action="x", training_issue="no"
        ),
    )
    assert "This feedback has already been answered" in again.text

    client.cookies.clear()  # the CQC adviser, in another browser
    await sign_in(client, cqc_agent)
    theirs = await client.get(page_path)
    words = re.sub(r"\s+", " ", visible_text(theirs))
    assert "The answer from the Local Government and Social Care Ombudsman" in words
    assert "Briefed the team on fees" in words and "Training issue Yes" in words
    assert 'id="send-answer"' not in theirs.text
    _no_codes(theirs)


async def test_the_sender_gets_no_answer_form_and_an_empty_list_says_so(
    client: httpx.AsyncClient, cqc_agent: Key
) -> None:
    feedback_id = await _feedback(client, cqc_agent)
    await sign_in(client, cqc_agent)
    page = await client.get(f"/feedback/{feedback_id}")
    assert 'id="send-answer"' not in page.text and "Not yet" in page.text
    refused = await shown(
        client,
        await post_form(
            client,
            f"/feedback/{feedback_id}/response",
            f"/feedback/{feedback_id}",
            remedial_action="Mine",
            training_issue="no",
        ),
    )
    assert "Only the team the feedback is about can answer it" in refused.text
    empty = await client.get("/feedback/incoming")
    assert "There is no feedback about the Care Quality Commission yet." in empty.text
