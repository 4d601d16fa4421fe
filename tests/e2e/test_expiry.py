"""A 5-second message with a picture is seen, then vanishes from both screens without a
reload; its row leaves the database, its file leaves the disk and its URL answers 404."""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests import media_samples
from tests.e2e.conftest import RunningApp, screenshot, wait_for
from tests.e2e.test_chat import TIMEOUT, friends_tab, signed_up


def befriend(sender: Page, receiver: Page, receiver_name: str, sender_name: str) -> None:
    friends_tab(sender)
    sender.get_by_label("Find people by username").fill(receiver_name)
    sender.get_by_role("button", name=f"Send friend request to {receiver_name}").click()
    friends_tab(receiver)
    receiver.get_by_role("button", name=f"Accept {sender_name}").click(timeout=TIMEOUT)
    expect(sender.get_by_role("button", name=f"Message {receiver_name}")).to_be_visible(
        timeout=TIMEOUT
    )


def attach(page: Page, *files: tuple[str, str, bytes]) -> None:
    """Choose files with the paperclip's file input and wait until each has uploaded."""
    page.locator("#file-picker").set_input_files(
        [{"name": name, "mimeType": mime, "buffer": data} for name, mime, data in files]
    )
    for name, _, _ in files:
        expect(page.locator(f'.tray-item.tray-done[data-name="{name}"]')).to_be_visible(
            timeout=TIMEOUT
        )


def stored_files(uploads: Path) -> list[Path]:
    """Stored files (not uploads still arriving)."""
    if not uploads.exists():
        return []
    return [p for p in uploads.rglob("*") if p.is_file() and ".incoming" not in p.parts]


def rows(app: RunningApp, body: str) -> int:
    with sqlite3.connect(app.database) as db:
        return db.execute("SELECT count(*) FROM messages WHERE body = ?", (body,)).fetchone()[0]


def test_five_second_message_vanishes_everywhere(browser: Browser, iris_app: RunningApp):
    ada = signed_up(browser, iris_app.url, "Ada")
    bob = signed_up(browser, iris_app.url, "Bob")
    befriend(ada, bob, "Bob", "Ada")
    ada.get_by_role("button", name="Message Bob").click()
    bob.get_by_role("button", name="Message Ada").click(timeout=TIMEOUT)

    ada.get_by_label("Disappearing timer").click()
    ada.get_by_role("option", name="Custom…").click()
    ada.get_by_label("Custom timer").fill("5s")
    attach(ada, ("secret.png", "image/png", media_samples.png()))
    composer = ada.get_by_label("Message", exact=True)
    composer.fill("this will self-destruct")
    composer.press("Enter")
    sent_at = time.monotonic()

    # The picker keeps its choice after a send: the next message is timed too.
    ada.locator(".message-mine .message-body", has_text="self-destruct").wait_for(timeout=TIMEOUT)
    composer.fill("me too")
    composer.press("Enter")

    theirs = bob.locator(".message-theirs .message-body", has_text="this will self-destruct")
    expect(theirs).to_be_visible(timeout=TIMEOUT)
    expect(bob.locator(".message-theirs .countdown")).to_have_count(2, timeout=TIMEOUT)
    expect(bob.locator(".message-theirs .countdown").first).to_have_text(
        re.compile(r"^\d+s$"), timeout=TIMEOUT
    )
    assert rows(iris_app, "this will self-destruct") == 1
    picture = bob.get_by_role("link", name="Open secret.png full size")
    expect(picture).to_be_visible(timeout=TIMEOUT)
    picture_url = picture.evaluate("a => a.href")
    assert bob.request.get(picture_url).status == 200
    assert len(stored_files(iris_app.uploads)) == 2  # the picture and its thumbnail
    screenshot(bob, "timed-message")

    expect(theirs).to_have_count(0, timeout=TIMEOUT)
    expect(bob.locator(".message-theirs")).to_have_count(0, timeout=TIMEOUT)
    expect(ada.locator(".message-mine .message-body", has_text="self-destruct")).to_have_count(
        0, timeout=TIMEOUT
    )
    assert time.monotonic() - sent_at >= 4  # not before its time
    wait_for(
        lambda: rows(iris_app, "this will self-destruct") == 0,
        deadline=20,
        what="the expired row to be deleted",
    )
    # Its picture is gone from disk and its URL answers not found, even to its recipient.
    wait_for(
        lambda: stored_files(iris_app.uploads) == [],
        deadline=20,
        what="the expired picture's files to be deleted",
    )
    assert bob.request.get(picture_url).status == 404
    assert bob.request.get(picture_url + "/thumbnail").status == 404
    # A reload shows nothing either: the page re-reads through the services.
    bob.reload()
    expect(bob.locator("#signed-in-username")).to_be_visible(timeout=TIMEOUT)
    bob.get_by_role("radio", name="Chats").click()
    bob.get_by_role("button", name="Conversation with Ada").click(timeout=TIMEOUT)
    expect(bob.locator("#conversation-title")).to_have_text("Ada", timeout=TIMEOUT)
    expect(bob.locator(".message-theirs")).to_have_count(0, timeout=TIMEOUT)
    for page in (ada, bob):
        page.context.close()
