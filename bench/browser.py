"""Shared by the browser benches: the app started as the README starts it, and two friends
with their conversation open in headless Chromium."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from bench.common import CHROMIUM, CHROMIUM_ARGS, app_env, free_port, iris_process

PASSWORD = "correct horse battery"


@contextmanager
def served_app(
    database_url: str | None = None, *, tmp: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[str]:
    """``./iris run`` on a free port (fresh SQLite unless a URL is given); yields its address."""
    tmp = tmp or Path(tempfile.mkdtemp(prefix="iris-bench-"))
    port = free_port()
    settings = app_env(tmp, database_url or f"sqlite:///{tmp / 'bench.db'}") | (env or {})
    settings["REFLEX_FRONTEND_PORT"] = str(port)
    with iris_process(
        ["run"], env=settings, log=tmp / "run.log", ready_url=f"http://127.0.0.1:{port}/ping"
    ):
        yield f"http://127.0.0.1:{port}"


def register(page: Page, base: str, username: str) -> None:
    """Sign up through the register page and wait for the home page."""
    page.goto(base + "/register")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.locator("#signed-in-username").wait_for(timeout=30_000)


@contextmanager
def two_friends(
    base: str, sender: str = "ada", receiver: str = "bob"
) -> Iterator[tuple[Page, Page]]:
    """Two people who befriended each other through the UI, each with the chat open."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        one = browser.new_context().new_page()
        two = browser.new_context().new_page()
        register(one, base, sender)
        register(two, base, receiver)
        one.get_by_role("radio", name="Friends").click()
        one.get_by_label("Find people by username").fill(receiver)
        one.get_by_role("button", name=f"Send friend request to {receiver}").click()
        two.get_by_role("radio", name="Friends").click()
        two.get_by_role("button", name=f"Accept {sender}").click(timeout=30_000)
        for page, friend in ((one, receiver), (two, sender)):
            page.get_by_role("button", name=f"Message {friend}").click(timeout=30_000)
            page.locator("#conversation-title").wait_for(timeout=30_000)
        try:
            yield one, two
        finally:
            browser.close()


def wait(predicate: Callable[[], bool], deadline: float, what: str) -> None:
    """Poll ``predicate`` every 5 ms until it holds, or raise after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.005)
    raise TimeoutError(what)
