"""The settings page in Chromium: a remembered theme, a password change that signs other
devices out, and a deleted account vanishing from a friend's open screen."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests import media_samples
from tests.e2e.conftest import (
    RunningApp,
    screenshot,
    serious_accessibility_violations,
    wait_for,
)
from tests.e2e.test_accounts import PASSWORD, log_in, register
from tests.e2e.test_expiry import attach, stored_files

TIMEOUT = 20_000
NEW_PASSWORD = "purple monkey dishwasher"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# The dialog has finished its opening animation (a screenshot mid-fade is misleading).
SETTLED = (
    "document.getAnimations().every(a => a.playState !== 'running')"
    " && !!document.querySelector('[role=alertdialog]')"
)


def signed_up(browser: Browser, base: str, username: str, viewport=DESKTOP) -> Page:
    page = browser.new_context(viewport=viewport).new_page()
    register(page, base, username)
    expect(page.locator("#signed-in-username")).to_have_text(f"@{username}", timeout=TIMEOUT)
    return page


def open_settings(page: Page) -> None:
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="Settings", level=1)).to_be_visible(timeout=TIMEOUT)
    expect(page).to_have_url(re.compile(r"/settings$"))


def pick_theme(page: Page, name: str) -> None:
    page.get_by_role("radio", name=name).click()
    expect(page.get_by_role("radio", name=name)).to_be_checked(timeout=TIMEOUT)


def html_is(page: Page, mode: str) -> None:
    expect(page.locator("html")).to_have_class(re.compile(rf"\b{mode}\b"), timeout=TIMEOUT)


def test_theme_is_applied_at_once_and_kept_after_reload(browser: Browser, iris_url: str):
    page = signed_up(browser, iris_url, "Theo")
    open_settings(page)
    expect(page.get_by_role("radio", name="System")).to_be_checked()

    pick_theme(page, "Dark")
    html_is(page, "dark")
    page.reload()
    expect(page.get_by_role("radio", name="Dark")).to_be_checked(timeout=TIMEOUT)
    html_is(page, "dark")

    # Another browser (nothing in its storage) gets the theme when Theo signs in there.
    other = browser.new_context(viewport=DESKTOP).new_page()
    log_in(other, iris_url, "theo")
    expect(other.locator("#signed-in-username")).to_have_text("@Theo", timeout=TIMEOUT)
    html_is(other, "dark")

    # "System" follows the device's preference.
    pick_theme(page, "System")
    page.emulate_media(color_scheme="light")
    html_is(page, "light")
    page.emulate_media(color_scheme="dark")
    html_is(page, "dark")

    pick_theme(page, "Light")
    html_is(page, "light")
    screenshot(page, "settings-desktop-light")
    assert serious_accessibility_violations(page) == []
    pick_theme(page, "Dark")
    html_is(page, "dark")
    screenshot(page, "settings-desktop-dark")
    assert serious_accessibility_violations(page) == []

    phone = browser.new_context(viewport=PHONE).new_page()
    log_in(phone, iris_url, "theo")
    expect(phone.locator("#signed-in-username")).to_have_text("@Theo", timeout=TIMEOUT)
    open_settings(phone)
    html_is(phone, "dark")
    screenshot(phone, "settings-phone-dark")
    pick_theme(phone, "Light")
    html_is(phone, "light")
    screenshot(phone, "settings-phone-light")
    phone.get_by_role("button", name="Delete account…").scroll_into_view_if_needed()
    screenshot(phone, "settings-phone-light-bottom")
    # Nothing is wider than the phone's screen.
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # Keyboard focus is visible.
    phone.get_by_label("Confirm new password").click()
    phone.keyboard.press("Tab")
    expect(phone.get_by_role("button", name="Change password")).to_be_focused()
    screenshot(phone, "settings-phone-light-focus")
    pick_theme(phone, "Dark")
    phone.get_by_role("button", name="Delete account…").click()
    expect(phone.get_by_role("alertdialog")).to_be_visible(timeout=TIMEOUT)
    phone.wait_for_function(SETTLED, timeout=TIMEOUT)
    screenshot(phone, "settings-phone-dark-delete-dialog")
    assert serious_accessibility_violations(phone) == []
    phone.get_by_role("button", name="Cancel").click()
    expect(phone.get_by_role("alertdialog")).to_have_count(0, timeout=TIMEOUT)

    for p in (page, other, phone):
        p.context.close()


def test_password_change_signs_the_other_device_out(browser: Browser, iris_url: str):
    here = signed_up(browser, iris_url, "Pat")
    elsewhere = browser.new_context(viewport=DESKTOP).new_page()
    log_in(elsewhere, iris_url, "pat")
    expect(elsewhere.locator("#signed-in-username")).to_have_text("@Pat", timeout=TIMEOUT)

    open_settings(here)
    here.get_by_label("Current password").fill("not my password")
    here.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    here.get_by_label("Confirm new password").fill(NEW_PASSWORD)
    here.get_by_role("button", name="Change password").click()
    expect(here.get_by_role("alert")).to_have_text("That password is not correct.", timeout=TIMEOUT)
    expect(elsewhere.locator("#signed-in-username")).to_be_visible()

    here.get_by_label("Current password").fill(PASSWORD)
    here.get_by_role("button", name="Change password").click()
    expect(here.get_by_text("Password changed. Signed out of 1 other session.")).to_be_visible(
        timeout=TIMEOUT
    )
    expect(here.get_by_label("Current password")).to_have_value("")

    # The other device lands on the login page without doing anything, and stays there.
    expect(elsewhere.get_by_role("button", name="Sign in", exact=True)).to_be_visible(
        timeout=TIMEOUT
    )
    expect(elsewhere).to_have_url(re.compile(r"/login$"))
    elsewhere.reload()
    expect(elsewhere.get_by_role("button", name="Sign in", exact=True)).to_be_visible(
        timeout=TIMEOUT
    )
    log_in(elsewhere, iris_url, "pat")
    expect(elsewhere.get_by_role("alert")).to_contain_text("Wrong username or password")
    log_in(elsewhere, iris_url, "pat", NEW_PASSWORD)
    expect(elsewhere.locator("#signed-in-username")).to_have_text("@Pat", timeout=TIMEOUT)

    # This device stayed signed in.
    here.get_by_role("link", name="Back to chats").click()
    expect(here.locator("#signed-in-username")).to_have_text("@Pat", timeout=TIMEOUT)
    screenshot(here, "home-with-settings-link")
    for p in (here, elsewhere):
        p.context.close()


def test_deleted_account_leaves_friends_open_screen_live(browser: Browser, iris_app: RunningApp):
    iris_url = iris_app.url
    dora = signed_up(browser, iris_url, "Dora")
    finn = signed_up(browser, iris_url, "Finn")
    dora.get_by_role("radio", name="Friends").click()
    dora.get_by_label("Find people by username").fill("fin")
    dora.get_by_role("button", name="Send friend request to Finn").click()
    finn.get_by_role("radio", name="Friends").click()
    finn.get_by_role("button", name="Accept Dora").click()
    expect(finn.get_by_role("button", name="Message Dora")).to_be_visible(timeout=TIMEOUT)
    finn.get_by_role("button", name="Message Dora").click()
    expect(finn.locator("#conversation-title")).to_have_text("Dora", timeout=TIMEOUT)
    # Dora leaves files behind: a picture sent to Finn, one she never sent, her own picture.
    dora.get_by_role("button", name="Message Finn").click()
    attach(dora, ("sent.png", "image/png", media_samples.png()))
    dora.get_by_label("Message", exact=True).press("Enter")
    expect(finn.get_by_role("link", name="Open sent.png full size")).to_be_visible(timeout=TIMEOUT)
    attach(dora, ("draft.txt", "text/plain", b"never sent"))
    open_settings(dora)
    dora.locator("#picture-picker").set_input_files(
        [{"name": "me.png", "mimeType": "image/png", "buffer": media_samples.png()}]
    )
    expect(dora.locator("img.rt-AvatarImage")).to_be_visible(timeout=TIMEOUT)
    assert len(stored_files(iris_app.uploads)) == 4  # sent + its thumbnail, draft, picture

    dora.get_by_role("button", name="Delete account…").click()
    dialog = dora.get_by_role("alertdialog")
    dialog.get_by_label("Your password").fill("wrong password")
    dialog.get_by_role("button", name="Delete my account").click()
    expect(dialog.get_by_role("alert")).to_have_text(
        "That password is not correct.", timeout=TIMEOUT
    )
    dialog.get_by_label("Your password").fill(PASSWORD)
    dialog.get_by_role("button", name="Delete my account").click()
    expect(dora.get_by_role("button", name="Sign in", exact=True)).to_be_visible(timeout=TIMEOUT)

    # Finn's screen drops Dora and the open conversation without a reload.
    expect(finn.locator("#conversation-title")).to_have_count(0, timeout=TIMEOUT)
    finn.get_by_role("radio", name="Friends").click()
    expect(finn.get_by_role("button", name="Message Dora")).to_have_count(0, timeout=TIMEOUT)
    finn.get_by_role("radio", name="Chats").click()
    expect(finn.get_by_role("button", name="Conversation with Dora")).to_have_count(0)

    # Every file of hers is gone from disk.
    wait_for(lambda: stored_files(iris_app.uploads) == [], deadline=20, what="Dora's files")

    # The name is free again.
    register(dora, iris_url, "dora")
    expect(dora.locator("#signed-in-username")).to_have_text("@dora", timeout=TIMEOUT)
    for p in (dora, finn):
        p.context.close()


def test_status_name_and_picture_reach_a_friend_live(browser: Browser, iris_app: RunningApp):
    gus = signed_up(browser, iris_app.url, "Gus")
    hal = signed_up(browser, iris_app.url, "Hal")
    gus.get_by_role("radio", name="Friends").click()
    gus.get_by_label("Find people by username").fill("hal")
    gus.get_by_role("button", name="Send friend request to Hal").click()
    hal.get_by_role("radio", name="Friends").click()
    hal.get_by_role("button", name="Accept Gus").click()
    hal.get_by_role("button", name="Message Gus").click(timeout=TIMEOUT)
    expect(hal.locator("#conversation-title")).to_have_text("Gus", timeout=TIMEOUT)

    open_settings(gus)
    gus.get_by_label("Display name").fill("Gus the Bold")
    gus.get_by_label("Status").fill("Sailing until Friday")
    gus.get_by_role("button", name="Save profile").click()
    gus.locator("#picture-picker").set_input_files(
        [{"name": "me.jpg", "mimeType": "image/jpeg", "buffer": media_samples.jpeg_with_gps()}]
    )
    expect(gus.locator("img.rt-AvatarImage")).to_be_visible(timeout=TIMEOUT)
    screenshot(gus, "settings-profile")
    assert serious_accessibility_violations(gus) == []

    # Hal's open conversation shows all three without a reload.
    expect(hal.locator("#conversation-title")).to_have_text("Gus the Bold", timeout=TIMEOUT)
    expect(hal.locator("#friend-status")).to_have_text("· Sailing until Friday", timeout=TIMEOUT)
    hal.wait_for_function(
        "() => [...document.querySelectorAll('img.rt-AvatarImage')]"
        ".some((i) => i.src.includes('/api/users/Gus/avatar') && i.naturalWidth === 256)",
        timeout=TIMEOUT,
    )
    expect(hal.locator('[data-username="Gus"]')).to_contain_text("Sailing until Friday")
    screenshot(hal, "friend-profile-live")
    for p in (gus, hal):
        p.context.close()
