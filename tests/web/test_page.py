"""The page at /, in a real browser: streamed chat, history, sessions, status strip."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.utils.stack import Stack
from tests.web.conftest import FLOWER_URL

expect.set_options(timeout=20_000)

# Where the screenshot of a short exchange goes (docs/screenshot.png is one of these).
SCREENSHOT = Path(os.environ.get("WEB_SCREENSHOT") or Path(tempfile.gettempdir()) / "convoflow-web.png")

# The answer is still arriving: some of it shows, not its end.
ANSWER_IN_PROGRESS = """() => {
  const answers = document.querySelectorAll('.turn .assistant');
  const text = answers.length ? answers[answers.length - 1].textContent : '';
  return text.length > 0 && !text.includes('earlier turns.)');
}"""


def say(page: Page, text: str) -> None:
    """Type a message and press Enter, as a person would."""
    page.get_by_label("Message").fill(text)
    page.get_by_label("Message").press("Enter")


def wait_until_stored(page: Page) -> None:
    """The last answer is complete (the offline model ends it so) and no turn waits for its database write."""
    expect(page.locator(".turn .assistant").last).to_contain_text("earlier turns.)")
    expect(page.locator(".badge.pending")).to_have_count(0, timeout=30_000)


def test_the_page_and_its_files_are_served_without_a_key(web_stack: Stack) -> None:
    with web_stack.http() as client:
        page = client.get("/")
        script = client.get("/static/app.js")
        config = client.get("/ui-config")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert config.json() == {"flower_url": FLOWER_URL}


def test_status_strip_shows_broker_database_workers_and_links_to_flower(page: Page, web_stack: Stack) -> None:
    page.goto(web_stack.api_url)
    checks = page.get_by_role("region", name="Service status")
    expect(checks).to_contain_text("Broker: ok")
    expect(checks).to_contain_text("Database: ok")
    expect(checks).to_contain_text(re.compile(r"Workers: \d+ up"))
    expect(checks).to_contain_text("Queue depth")
    expect(page.get_by_role("link", name=re.compile("Flower"))).to_have_attribute("href", FLOWER_URL)


def test_an_answer_streams_in_is_marked_until_stored_and_returns_after_a_reload(page: Page, web_stack: Stack) -> None:
    page.goto(web_stack.api_url)
    say(page, "What does Celery do?")
    page.wait_for_function(ANSWER_IN_PROGRESS, polling="raf")
    turn = page.locator(".turn").last
    expect(turn.locator(".assistant")).to_have_text(
        "[offline model] You said: What does Celery do? (I remember 0 earlier turns.)"
    )
    expect(turn.locator(".badge.pending")).to_have_text("not saved yet")
    wait_until_stored(page)
    say(page, "And Redis?")
    expect(page.locator(".turn").last.locator(".assistant")).to_contain_text("I remember 1 earlier turns.")
    wait_until_stored(page)

    page.reload()
    expect(page.locator(".turn .user")).to_have_text(["What does Celery do?", "And Redis?"])
    expect(page.locator(".turn .assistant").last).to_contain_text("You said: And Redis?")
    expect(page.get_by_role("region", name="Service status")).to_contain_text("Database: ok")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    print(f"\nscreenshot: {SCREENSHOT}")


def test_sessions_are_listed_newest_first_switched_and_deleted(page: Page, web_stack: Stack) -> None:
    page.goto(web_stack.api_url)
    say(page, "First session question")
    wait_until_stored(page)
    first = page.locator("#session-id").inner_text()

    page.get_by_role("button", name="New session").click()
    expect(page.locator("#session-id")).not_to_have_text(first)
    second = page.locator("#session-id").inner_text()
    expect(page.locator(".turn")).to_have_count(0)
    say(page, "Second session question")
    wait_until_stored(page)

    sessions = page.get_by_role("navigation", name="Sessions")
    expect(sessions.locator(".session .open").first).to_contain_text(second)
    expect(sessions).to_contain_text(first)

    sessions.locator(".session .open", has_text=first).click()
    expect(page.locator("#session-id")).to_have_text(first)
    expect(page.locator(".turn .user")).to_have_text(["First session question"])

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Delete session {second}").click()
    expect(sessions).not_to_contain_text(second)
    expect(page.locator("#session-id")).to_have_text(first)
    with httpx.Client(base_url=web_stack.api_url) as client:
        listed = [item["session_id"] for item in client.get("/sessions").json()["sessions"]]
    assert second not in listed and first in listed
