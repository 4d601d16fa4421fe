"""Two-step sign-in and the devices list in Chromium: set up an authenticator app from the
settings page (the code computed with pyotp from the key the page shows), sign out, sign in
again with a code; and sign another device out from the list.

Screenshots of the new settings section and of the login's second step, light and dark,
desktop and 390 px wide, go to test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import re
import time

import pyotp
from playwright.sync_api import Browser, Locator, Page, expect

from tests.e2e.conftest import ARTIFACTS, serious_accessibility_violations
from tests.e2e.test_accounts import log_in
from tests.e2e.test_settings import DESKTOP, PHONE, TIMEOUT, open_settings, signed_up


def shoot(page: Page, target: Locator | None, name: str) -> None:
    """Light and dark, desktop and phone width: ``name-{desktop,phone}-{light,dark}.png``.
    With a ``target``, just that element (scrolled into view), else the viewport."""
    ARTIFACTS.mkdir(exist_ok=True)
    for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            expect(page.locator("html")).to_have_class(re.compile(rf"\b{scheme}\b"))
            path = str(ARTIFACTS / f"{name}-{width}-{scheme}.png")
            if target is None:
                page.screenshot(path=path)
            else:
                target.scroll_into_view_if_needed()
                target.screenshot(path=path)
    page.set_viewport_size(DESKTOP)
    page.emulate_media(color_scheme="light")


def test_set_up_two_step_sign_in_then_sign_in_with_a_code(browser: Browser, iris_url: str):
    page = signed_up(browser, iris_url, "Tess")
    elsewhere = browser.new_context(viewport=DESKTOP).new_page()
    log_in(elsewhere, iris_url, "tess")
    expect(elsewhere.locator("#signed-in-username")).to_have_text("@Tess", timeout=TIMEOUT)

    open_settings(page)
    section = page.locator("#two-step")
    expect(section.get_by_text("Off", exact=True)).to_be_visible(timeout=TIMEOUT)
    shoot(page, section, "two-step-off")

    page.get_by_role("button", name="Set up two-step sign-in").click()
    secret_box = page.locator("#totp-secret")
    expect(secret_box).to_have_text(re.compile(r"^[A-Z2-7]{32}$"), timeout=TIMEOUT)
    expect(page.locator("#totp-qr")).to_have_attribute("src", re.compile("^data:image/svg"))
    secret = secret_box.inner_text()
    shoot(page, section, "two-step-enrol")
    assert serious_accessibility_violations(page) == []

    page.get_by_label("2. Enter the 6-digit code the app shows").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on").click()
    codes = page.locator("#recovery-codes code")
    expect(codes).to_have_count(10, timeout=TIMEOUT)
    recovery = codes.all_inner_texts()
    assert all(re.fullmatch(r"[a-z2-9]{4}(-[a-z2-9]{4}){3}", c) for c in recovery), recovery
    shoot(page, section, "two-step-recovery-codes")
    assert serious_accessibility_violations(page) == []
    page.get_by_role("button", name="I saved them").click()
    expect(codes).to_have_count(0, timeout=TIMEOUT)
    expect(section.get_by_text("10 recovery codes left")).to_be_visible(timeout=TIMEOUT)
    expect(page.locator("#totp-secret")).to_have_count(0)
    shoot(page, section, "two-step-on")

    # The devices list: this browser and the other one; sign the other one out.
    devices = page.locator("#devices .iris-device")
    page.reload()  # the list as loaded after the other device's sign-in
    expect(devices).to_have_count(2, timeout=TIMEOUT)
    expect(devices.nth(0)).to_contain_text("This device")
    expect(devices.nth(0)).to_contain_text("Chrome on Linux")
    shoot(page, page.locator("#devices").locator(".."), "devices")
    assert serious_accessibility_violations(page) == []
    devices.nth(1).get_by_role("button", name=re.compile("^Sign out")).click()
    expect(devices).to_have_count(1, timeout=TIMEOUT)
    expect(elsewhere.get_by_role("button", name="Sign in", exact=True)).to_be_visible(
        timeout=TIMEOUT
    )
    expect(elsewhere).to_have_url(re.compile(r"/login$"))

    # Sign out, and back in: the password alone is not enough.
    page.get_by_role("link", name="Back to chats").click()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible(timeout=TIMEOUT)
    log_in(page, iris_url, "tess")
    code_box = page.get_by_label("Code", exact=True)
    expect(code_box).to_be_visible(timeout=TIMEOUT)
    expect(code_box).to_be_focused()
    assert "/login" in page.url
    expect(page.get_by_role("heading", name="Two-step sign-in")).to_be_visible()
    shoot(page, None, "login-second-step")
    assert serious_accessibility_violations(page) == []

    code_box.fill("000000")
    page.get_by_role("button", name="Verify and sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That code is not correct.", timeout=TIMEOUT)
    shoot(page, None, "login-second-step-error")
    # The next step's code: the one that turned it on (this step's) is spent already.
    page.get_by_label("Code", exact=True).fill(pyotp.TOTP(secret).at(time.time() + 30))
    page.get_by_role("button", name="Verify and sign in").click()
    expect(page.locator("#signed-in-username")).to_have_text("@Tess", timeout=TIMEOUT)

    for p in (page, elsewhere):
        p.context.close()
