"""Passkeys in Chromium with a virtual authenticator (DevTools' WebAuthn domain: CTAP2, an
internal platform authenticator with resident keys and user verification): add one in
Settings, sign out, sign in with the passkey alone; pass the second step with it; a
deleted passkey no longer signs in; a used challenge is refused.

The pages are opened at ``localhost``: browsers refuse an IP address as a WebAuthn relying
party, and Iris takes its RP id from the allowed origins (``http://localhost:<port>`` first).
Screenshots of the login page and the settings section, light and dark, desktop and 390 px
wide, go to test-artifacts/.
"""

from __future__ import annotations

import re

import pyotp
from playwright.sync_api import Browser, CDPSession, Page, expect

from tests.e2e.conftest import serious_accessibility_violations
from tests.e2e.test_accounts import PASSWORD, log_in
from tests.e2e.test_settings import TIMEOUT, open_settings, signed_up
from tests.e2e.test_two_step import shoot


def at_localhost(iris_url: str) -> str:
    return iris_url.replace("127.0.0.1", "localhost")


def virtual_authenticator(page: Page) -> tuple[CDPSession, str]:
    """A platform authenticator that verifies the user at once, attached to ``page``."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, str(added["authenticatorId"])


def add_passkey(page: Page, name: str) -> None:
    section = page.locator("#passkeys-section")
    section.get_by_role("button", name="Add a passkey").click()
    section.get_by_label("Name").fill(name)
    section.get_by_label("Your password").fill(PASSWORD)
    section.get_by_role("button", name="Create passkey").click()
    expect(section.locator(".passkey-name")).to_contain_text([name], timeout=TIMEOUT)


def log_out(page: Page) -> None:
    page.get_by_role("link", name="Back to chats").click()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible(timeout=TIMEOUT)


def sign_in_with_passkey(page: Page, base: str) -> None:
    page.goto(base + "/login")
    page.get_by_role("button", name="Sign in with a passkey").click()


def test_add_a_passkey_sign_in_with_it_alone_then_delete_it(browser: Browser, iris_url: str):
    base = at_localhost(iris_url)
    page = signed_up(browser, base, "Pia")
    cdp, authenticator = virtual_authenticator(page)
    open_settings(page)
    section = page.locator("#passkeys-section")
    expect(section.get_by_text("No passkeys yet.")).to_be_visible(timeout=TIMEOUT)
    shoot(page, section, "passkeys-none")

    # A wrong password adds nothing and says so.
    section.get_by_role("button", name="Add a passkey").click()
    section.get_by_label("Name").fill("Work laptop")
    section.get_by_label("Your password").fill("not my password")
    section.get_by_role("button", name="Create passkey").click()
    expect(section.get_by_role("alert")).to_have_text(re.compile("not correct"), timeout=TIMEOUT)
    shoot(page, section, "passkeys-add-error")
    section.get_by_role("button", name="Cancel").click()

    add_passkey(page, "Work laptop")
    expect(section.locator(".iris-passkey")).to_contain_text(["Last used: Never"])
    stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert [c["isResidentCredential"] for c in stored["credentials"]] == [True]
    shoot(page, section, "passkeys-list")
    assert serious_accessibility_violations(page) == []

    # Signed out, the passkey alone signs in: no username, no password.
    log_out(page)
    shoot(page, None, "login-passkey")
    assert serious_accessibility_violations(page) == []
    sign_in_with_passkey(page, base)
    expect(page.locator("#signed-in-username")).to_have_text("@Pia", timeout=TIMEOUT)
    open_settings(page)
    expect(section.locator(".iris-passkey")).not_to_contain_text(
        ["Last used: Never"], timeout=TIMEOUT
    )

    # Deleted (with the password), it no longer signs in, though the device still holds it.
    section.get_by_role("button", name="Delete Work laptop").click()
    section.get_by_label("Your password").fill(PASSWORD)
    section.get_by_role("button", name="Delete passkey").click()
    expect(section.get_by_text("No passkeys yet.")).to_be_visible(timeout=TIMEOUT)
    log_out(page)
    sign_in_with_passkey(page, base)
    expect(page.locator("#form-error")).to_have_text(
        re.compile("passkey was not accepted"), timeout=TIMEOUT
    )
    assert "/login" in page.url
    stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert len(stored["credentials"]) == 1
    page.context.close()


def test_a_passkey_passes_the_second_step(browser: Browser, iris_url: str):
    base = at_localhost(iris_url)
    page = signed_up(browser, base, "Quinn")
    virtual_authenticator(page)
    open_settings(page)
    add_passkey(page, "Phone")
    page.get_by_role("button", name="Set up two-step sign-in").click()
    secret_box = page.locator("#totp-secret")
    expect(secret_box).to_have_text(re.compile(r"^[A-Z2-7]{32}$"), timeout=TIMEOUT)
    page.get_by_label("2. Enter the 6-digit code the app shows").fill(
        pyotp.TOTP(secret_box.inner_text()).now()
    )
    page.get_by_role("button", name="Turn on").click()
    page.get_by_role("button", name="I saved them").click()
    expect(page.locator("#two-step").get_by_text("On", exact=True)).to_be_visible(timeout=TIMEOUT)

    log_out(page)
    log_in(page, base, "quinn")
    passkey_button = page.get_by_role("button", name="Use a passkey instead")
    expect(passkey_button).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_label("Code", exact=True)).to_be_visible()
    shoot(page, None, "login-second-step-passkey")
    assert serious_accessibility_violations(page) == []
    passkey_button.click()
    expect(page.locator("#signed-in-username")).to_have_text("@Quinn", timeout=TIMEOUT)
    page.context.close()


REPLAY = """
async () => {
  const deadline = Date.now() + 15000;
  while (!window.irisPasskeys && Date.now() < deadline) {
    await new Promise((done) => setTimeout(done, 50));
  }
  const post = (url, body) => fetch(url, {method: 'POST',
    headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  const options = await (await post('/api/auth/passkey/options', {})).json();
  const answer = await window.irisPasskeys.get(options.public_key);
  if (!answer.credential) return [answer.error];
  const first = await post('/api/auth/passkey/login', {credential: answer.credential});
  const again = await post('/api/auth/passkey/login', {credential: answer.credential});
  return [first.status, again.status, (await again.json()).detail];
}
"""


def test_a_used_challenge_is_refused(browser: Browser, iris_url: str):
    """The browser's own answer, sent twice to the JSON API: the second is refused."""
    base = at_localhost(iris_url)
    page = signed_up(browser, base, "Rex")
    virtual_authenticator(page)
    open_settings(page)
    add_passkey(page, "Desk")
    log_out(page)
    first, again, detail = page.evaluate(REPLAY)
    assert (first, again) == (200, 401), (first, again, detail)
    assert "not accepted" in detail
    page.context.close()
