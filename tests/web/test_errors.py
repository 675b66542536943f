"""The page says what went wrong: a missing API key, the model down, the broker down, no worker."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from tests.utils.auth import KEYS
from tests.utils.stack import Stack
from tests.web.conftest import DESKTOP

expect.set_options(timeout=20_000)


def say(page: Page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_label("Message").press("Enter")


def test_a_missing_key_is_explained_and_a_saved_key_opens_the_service(browser: Browser, keyed_stack: Stack) -> None:
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        page.goto(keyed_stack.api_url)
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("This service requires an API key")
        say(page, "Am I let in?")
        expect(alert).to_contain_text("This service requires an API key")
        expect(page.get_by_label("Message")).to_have_value("Am I let in?")  # kept for another try

        page.get_by_label("API key").fill(KEYS["alice"])
        page.get_by_role("button", name="Save key").click()
        expect(alert).to_be_hidden()
        page.get_by_label("Message").press("Enter")
        expect(page.locator(".turn .assistant").last).to_contain_text("You said: Am I let in?")

        page.reload()  # the key stays in the browser
        expect(page.get_by_label("API key")).to_have_value(KEYS["alice"])
        expect(page.locator(".turn .user")).to_have_text(["Am I let in?"])
        expect(alert).to_be_hidden()
    finally:
        context.close()


def test_no_worker_and_the_model_down_are_explained(page: Page, model_down_stack: Stack) -> None:
    page.goto(model_down_stack.api_url)
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("No worker answered in time")
    expect(page.get_by_role("region", name="Service status")).to_contain_text("Workers: down")
    say(page, "Anyone there?")
    expect(alert).to_contain_text("The language model is not answering")
    expect(page.locator(".turn")).to_have_count(0)


def test_the_broker_down_is_explained(page: Page, broker_down_stack: Stack) -> None:
    page.goto(broker_down_stack.api_url)
    expect(page.get_by_role("alert")).to_contain_text("cannot reach its message broker or Redis")
    expect(page.get_by_role("region", name="Service status")).to_contain_text("Broker: down")
