"""A person registers, signs out, signs in and sees the home page, in headless Chromium."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import screenshot

PASSWORD = "correct horse battery"
TIMEOUT = 20_000


def register(page: Page, base: str, username: str, password: str = PASSWORD, confirm=None):
    page.goto(base + "/register")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Confirm password").fill(confirm or password)
    page.get_by_role("button", name="Create account").click()


def log_in(page: Page, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(base + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_register_log_out_log_in_and_see_home(browser: Browser, iris_url: str):
    context = browser.new_context()
    page = context.new_page()

    register(page, iris_url, "Ada.Lovelace")
    expect(page.locator("#signed-in-username")).to_have_text("@Ada.Lovelace", timeout=TIMEOUT)
    cookie = next(c for c in context.cookies() if c["name"] == "iris_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert "iris_session" not in page.evaluate("document.cookie")
    screenshot(page, "home-light")
    page.emulate_media(color_scheme="dark")
    screenshot(page, "home-dark")

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible(timeout=TIMEOUT)
    assert not [c for c in context.cookies() if c["name"] == "iris_session"]
    page.goto(iris_url + "/")
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible(timeout=TIMEOUT)

    log_in(page, iris_url, "ada.lovelace", "wrong password")
    expect(page.get_by_role("alert")).to_contain_text("Wrong username or password", timeout=TIMEOUT)
    log_in(page, iris_url, "ADA.LOVELACE")
    expect(page.locator("#signed-in-username")).to_have_text("@Ada.Lovelace", timeout=TIMEOUT)

    page.goto(iris_url + "/login")
    expect(page.locator("#signed-in-username")).to_be_visible(timeout=TIMEOUT)
    context.close()


def test_bad_registrations_show_clear_errors(browser: Browser, iris_url: str):
    page = browser.new_page()
    register(page, iris_url, "Grace")
    expect(page.locator("#signed-in-username")).to_have_text("@Grace", timeout=TIMEOUT)
    page.context.close()

    page = browser.new_page()
    register(page, iris_url, "gRACE")
    expect(page.get_by_role("alert")).to_have_text("That username is taken.", timeout=TIMEOUT)
    register(page, iris_url, "Linus", password="short")
    expect(page.get_by_role("alert")).to_contain_text("at least 8 characters", timeout=TIMEOUT)
    register(page, iris_url, "Linus", confirm=PASSWORD + "x")
    expect(page.get_by_role("alert")).to_contain_text("do not match", timeout=TIMEOUT)
    screenshot(page, "register-error")
    page.context.close()


def test_tampered_session_cookie_sends_user_to_login(browser: Browser, iris_url: str):
    context = browser.new_context()
    host = iris_url.split("//", 1)[1].split(":", 1)[0]
    context.add_cookies(
        [{"name": "iris_session", "value": "eyJhbGciOiJub25lIn0.e30.", "domain": host, "path": "/"}]
    )
    page = context.new_page()
    page.goto(iris_url + "/")
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible(timeout=TIMEOUT)
    assert "/login" in page.url
    context.close()
