"""axe-core finds no serious or critical accessibility problem on the login, register and chat
pages, in light and dark mode (the settings page is checked in ``test_settings``)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests import media_samples
from tests.e2e.conftest import RunningApp, serious_accessibility_violations
from tests.e2e.test_chat import TIMEOUT, signed_up
from tests.e2e.test_expiry import attach, befriend


def in_both_themes(page: Page) -> dict[str, list[str]]:
    """Violations with the system in light mode, then in dark mode (the default theme
    follows the system)."""
    found = {}
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.wait_for_function(
            "(dark) => document.documentElement.classList.contains('dark') === dark",
            arg=scheme == "dark",
        )
        found[scheme] = serious_accessibility_violations(page)
    return found


CLEAN = {"light": [], "dark": []}


@pytest.mark.parametrize("path", ["/login", "/register"])
def test_sign_in_pages_have_no_serious_violations(browser: Browser, iris_app: RunningApp, path):
    page = browser.new_context().new_page()
    page.goto(iris_app.url + path)
    expect(
        page.get_by_role(
            "button", name="Sign in" if path == "/login" else "Create account", exact=True
        )
    ).to_be_visible(timeout=TIMEOUT)
    assert in_both_themes(page) == CLEAN
    page.context.close()


def test_chat_page_has_no_serious_violations(browser: Browser, iris_app: RunningApp):
    ada = signed_up(browser, iris_app.url, "Ada")
    bob = signed_up(browser, iris_app.url, "Bob")
    befriend(ada, bob, "Bob", "Ada")
    assert serious_accessibility_violations(ada) == []  # friends tab, empty conversation
    ada.get_by_role("button", name="Message Bob").click()
    attach(ada, ("p.png", "image/png", media_samples.png()), ("n.txt", "text/plain", b"n"))
    ada.get_by_label("Message", exact=True).fill("hello with files")
    ada.get_by_label("Message", exact=True).press("Enter")
    bob.get_by_role("button", name="Message Ada").click(timeout=TIMEOUT)
    expect(bob.locator(".message-theirs .message-body")).to_have_text(
        "hello with files", timeout=TIMEOUT
    )
    bob.get_by_label("Message", exact=True).fill("reply")
    bob.get_by_label("Message", exact=True).press("Enter")
    expect(ada.locator(".message-theirs .message-body")).to_have_text("reply", timeout=TIMEOUT)
    assert in_both_themes(ada) == CLEAN
    for page in (ada, bob):
        page.context.close()
