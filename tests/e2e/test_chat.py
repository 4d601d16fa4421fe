"""Two people befriend and talk; everything arrives live on the other screen, no reload."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import screenshot
from tests.e2e.test_accounts import register

TIMEOUT = 20_000


def signed_up(browser: Browser, base: str, username: str) -> Page:
    page = browser.new_context(viewport={"width": 1200, "height": 800}).new_page()
    register(page, base, username)
    expect(page.locator("#signed-in-username")).to_have_text(f"@{username}", timeout=TIMEOUT)
    return page


def friends_tab(page: Page) -> None:
    page.get_by_role("radio", name="Friends").click()


def test_friends_talk_live_with_receipts_and_delete(browser: Browser, iris_url: str):
    ada = signed_up(browser, iris_url, "Ada")
    bob = signed_up(browser, iris_url, "Bob")
    eve = signed_up(browser, iris_url, "Eve")

    # Ada finds Bob and sends a request; Bob sees it arrive without reloading.
    friends_tab(ada)
    ada.get_by_label("Find people by username").fill("bo")
    ada.get_by_role("button", name="Send friend request to Bob").click()
    expect(ada.get_by_role("button", name="Cancel request to Bob")).to_be_visible(timeout=TIMEOUT)
    expect(bob.locator(".incoming-count").first).to_have_text("1", timeout=TIMEOUT)
    friends_tab(bob)
    bob.get_by_role("button", name="Accept Ada").click()
    expect(ada.get_by_role("button", name="Message Bob")).to_be_visible(timeout=TIMEOUT)

    # Ada writes; markup is shown as text on Bob's side.
    ada.get_by_role("button", name="Message Bob").click()
    composer = ada.get_by_label("Message", exact=True)
    composer.fill("Hello <b>Bob</b>")
    composer.press("Enter")
    expect(ada.locator(".message-mine .message-body")).to_have_text(
        "Hello <b>Bob</b>", timeout=TIMEOUT
    )
    expect(ada.locator(".message-mine").get_by_label("Sent")).to_be_visible(timeout=TIMEOUT)

    bob.get_by_role("radio", name="Chats").click()
    row = bob.get_by_role("button", name="Conversation with Ada")
    expect(row.locator(".unread-badge")).to_have_text("1", timeout=TIMEOUT)
    row.click()
    theirs = bob.locator(".message-theirs .message-body")
    expect(theirs).to_have_text("Hello <b>Bob</b>", timeout=TIMEOUT)
    assert bob.locator(".message-theirs b").count() == 0

    # Opening the conversation marked it read: Ada sees the receipt live.
    expect(ada.locator(".message-mine").get_by_label("Read")).to_be_visible(timeout=TIMEOUT)

    # Presence and typing: Ada sees Bob online, then sees him typing before he sends.
    expect(ada.locator("#presence")).to_contain_text("online", timeout=TIMEOUT)
    reply = bob.get_by_label("Message", exact=True)
    reply.type("Hi Ada")
    expect(ada.locator("#typing-indicator")).to_have_text("Bob is typing…", timeout=TIMEOUT)
    reply.fill("Hi Ada")
    reply.press("Shift+Enter")
    reply.type("second line")
    reply.press("Enter")
    expect(ada.locator(".message-theirs .message-body")).to_have_text(
        "Hi Ada\nsecond line", timeout=TIMEOUT
    )
    expect(ada.locator("[data-sonner-toast]")).to_have_count(0, timeout=TIMEOUT)
    screenshot(ada, "chat-light")
    ada.emulate_media(color_scheme="dark")
    screenshot(ada, "chat-dark")

    # Ada deletes her message for everyone: it disappears from Bob's screen.
    ada.locator(".message-mine").get_by_label("Message actions").click()
    ada.get_by_role("menuitem", name="Delete for everyone").click()
    expect(bob.locator(".message-theirs .message-body")).to_have_count(0, timeout=TIMEOUT)
    expect(ada.locator(".message-mine")).to_have_count(0, timeout=TIMEOUT)

    # Eve is nobody's friend: she has no conversation and cannot open one.
    expect(eve.get_by_role("button", name="Conversation with Ada")).to_have_count(0)
    friends_tab(eve)
    expect(eve.get_by_role("button", name="Message Ada")).to_have_count(0)

    # Ada blocks Eve, who had asked to be friends: Eve is not told, Ada can lift it again.
    eve.get_by_label("Find people by username").fill("ada")
    eve.get_by_role("button", name="Send friend request to Ada").click()
    expect(ada.get_by_role("button", name="Accept Eve")).to_be_visible(timeout=TIMEOUT)
    friends_tab(ada)
    ada.get_by_role("button", name="Decline Eve").click()
    eve.get_by_label("Find people by username").fill("ada")
    expect(eve.get_by_role("button", name="Send friend request to Ada")).to_be_visible(
        timeout=TIMEOUT
    )

    # Bob leaves: Ada's header turns from "online" to "last seen", without a reload.
    bob.context.close()
    expect(ada.locator("#presence")).to_contain_text("last seen today at", timeout=TIMEOUT)

    for page in (ada, eve):
        page.context.close()


# The message list is scrolled to its end, and long enough for that to mean something.
AT_END = """() => {
    const el = document.getElementById('message-list');
    return el.scrollHeight > el.clientHeight + 100
        && el.scrollTop + el.clientHeight >= el.scrollHeight - 2;
}"""


def send_from_the_top(page: Page, text: str) -> None:
    """Scrolled up to read, the user sends one more: the list goes back to its end, where
    the new row is."""
    page.locator("#message-list").evaluate("el => { el.scrollTop = 0; }")
    composer = page.get_by_label("Message", exact=True)
    composer.fill(text)
    composer.press("Enter")
    expect(page.locator(".message-mine").last).to_contain_text(text, timeout=TIMEOUT)
    page.wait_for_function(AT_END, timeout=TIMEOUT)
    expect(page.locator(".message-mine").last).to_be_in_viewport()


def test_the_list_follows_what_one_sends(browser: Browser, iris_url: str):
    """A send gets no script back from the server: the page itself scrolls to the new row
    once the delta brings it, however long the conversation is."""
    cyd = signed_up(browser, iris_url, "Cyd")
    dan = signed_up(browser, iris_url, "Dan")
    friends_tab(cyd)
    cyd.get_by_label("Find people by username").fill("dan")
    cyd.get_by_role("button", name="Send friend request to Dan").click()
    friends_tab(dan)
    dan.get_by_role("button", name="Accept Cyd").click()
    cyd.get_by_role("button", name="Message Dan").click()

    composer = cyd.get_by_label("Message", exact=True)
    sent = 30
    for n in range(1, sent + 1):
        composer.fill(f"line {n}")
        composer.press("Enter")
        expect(cyd.locator(".message-mine")).to_have_count(n, timeout=TIMEOUT)
    cyd.wait_for_function(AT_END, timeout=TIMEOUT)
    send_from_the_top(cyd, "and the last")
    screenshot(cyd, "chat-sent-scrolled-light")
    cyd.set_viewport_size({"width": 390, "height": 844})
    cyd.emulate_media(color_scheme="dark")
    send_from_the_top(cyd, "from the phone")
    screenshot(cyd, "chat-sent-scrolled-phone-dark")
    for page in (cyd, dan):
        page.context.close()
