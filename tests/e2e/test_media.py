"""Media between two people in Chromium: an image shows as a thumbnail and opens full size on
the other side, a file downloads with its name, video and audio play inline, and nobody else
can fetch any of it."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests import media_samples
from tests.e2e.conftest import RunningApp, screenshot
from tests.e2e.test_chat import TIMEOUT, signed_up
from tests.e2e.test_expiry import attach, befriend, stored_files


def open_chat(page: Page, friend: str) -> None:
    """From the Friends tab (where ``befriend`` leaves both people)."""
    page.get_by_role("button", name=f"Message {friend}").click(timeout=TIMEOUT)
    expect(page.locator("#conversation-title")).to_have_text(friend, timeout=TIMEOUT)


def test_image_file_video_and_audio_reach_the_friend(browser: Browser, iris_app: RunningApp):
    ada = signed_up(browser, iris_app.url, "Ada")
    bob = signed_up(browser, iris_app.url, "Bob")
    eve = signed_up(browser, iris_app.url, "Eve")
    befriend(ada, bob, "Bob", "Ada")
    open_chat(ada, "Bob")
    open_chat(bob, "Ada")

    photo = media_samples.jpeg_with_gps(1200, 800)
    attach(ada, ("beach.jpg", "image/jpeg", photo), ("notes.txt", "text/plain", b"bring snacks"))
    # A file can be removed from the tray before sending: its upload is deleted.
    attach(ada, ("oops.txt", "text/plain", b"not this one"))
    ada.get_by_role("button", name="Remove oops.txt").click()
    expect(ada.locator('.tray-item[data-name="oops.txt"]')).to_have_count(0)
    composer = ada.get_by_label("Message", exact=True)
    composer.fill("holiday pictures")
    composer.press("Enter")
    expect(ada.locator(".tray-item")).to_have_count(0, timeout=TIMEOUT)

    # Bob sees the thumbnail (a real decoded image) and the file card, live.
    thumb = bob.locator(".message-theirs img.attachment-image")
    expect(thumb).to_be_visible(timeout=TIMEOUT)
    bob.wait_for_function(
        "() => { const i = document.querySelector('.message-theirs img.attachment-image');"
        " return i && i.complete && i.naturalWidth > 0; }",
        timeout=TIMEOUT,
    )
    assert (
        bob.evaluate("document.querySelector('.message-theirs img.attachment-image').naturalWidth")
        == 640
    )
    expect(bob.locator(".message-theirs .attachment-file")).to_contain_text("notes.txt")

    # The thumbnail opens the full-size, metadata-free image in a new tab.
    with bob.context.expect_page() as opened:
        bob.get_by_role("link", name="Open beach.jpg full size").click()
    full = opened.value
    full.wait_for_load_state()
    assert full.evaluate("document.images[0].naturalWidth") == 1200
    image_url = full.url
    full.close()
    served = bob.request.get(image_url)
    assert served.status == 200 and served.headers["content-type"] == "image/jpeg"
    assert b"Secret Camera" not in served.body()

    # The file downloads under its original name.
    with bob.expect_download() as download_info:
        bob.get_by_role("link", name="Download notes.txt").click()
    download = download_info.value
    assert download.suggested_filename == "notes.txt"
    assert Path(download.path()).read_bytes() == b"bring snacks"

    # Reflex's public upload route does not exist, so it cannot serve the stored files.
    for stored in stored_files(iris_app.uploads):
        relative = stored.relative_to(iris_app.uploads).as_posix()
        assert bob.request.get(f"{iris_app.url}/_upload/{relative}").status == 404
        assert bob.request.get(f"{iris_app.url}/{relative}").status == 404

    # Eve, signed in but not in the conversation, and a signed-out request both get 404.
    assert eve.request.get(image_url).status == 404
    anonymous = browser.new_context()
    assert anonymous.request.get(image_url).status == 404
    anonymous.close()

    # Video and audio play inline, with seeking.
    attach(
        bob,
        ("clip.webm", "video/webm", media_samples.webm()),
        ("tone.wav", "audio/wav", media_samples.wav(2.0)),
    )
    bob.get_by_label("Message", exact=True).press("Enter")
    video = ada.locator(".message-theirs video.attachment-video")
    expect(video).to_be_visible(timeout=TIMEOUT)
    ada.wait_for_function(
        "() => { const v = document.querySelector('.message-theirs video');"
        " return v && v.readyState >= 1 && v.duration > 1; }",
        timeout=TIMEOUT,
    )
    ada.evaluate("document.querySelector('.message-theirs video').currentTime = 1.5")
    ada.wait_for_function(
        "() => document.querySelector('.message-theirs video').seeked !== undefined"
        " || document.querySelector('.message-theirs video').currentTime >= 1.4",
        timeout=TIMEOUT,
    )
    ada.wait_for_function(
        "() => { const a = document.querySelector('.message-theirs audio');"
        " return a && a.readyState >= 1 && a.duration > 1.5; }",
        timeout=TIMEOUT,
    )
    # Only the sent files are on disk: the removed one is gone (4 files + 1 thumbnail).
    assert len(stored_files(iris_app.uploads)) == 5

    for page, name in ((ada, "media-conversation"), (bob, "media-conversation-bob")):
        page.locator("#message-list").evaluate("el => { el.scrollTop = el.scrollHeight; }")
        screenshot(page, name)
    ada.get_by_role("button", name="Toggle dark mode").click()
    ada.wait_for_function("document.documentElement.classList.contains('dark')")
    screenshot(ada, "media-conversation-dark")
    for page in (ada, bob, eve):
        page.context.close()
