"""Retake the README's screenshots from the running app, so they show what Iris looks like now.

Starts ``./iris run`` on a scratch SQLite database and upload folder, signs Ada and Bob up in
headless Chromium, gives them a conversation with text, a timed message, a photo, a video, a
voice clip and a file, then saves light and dark, desktop and phone-width PNGs into
``docs/screenshots/``.

    .venv/bin/python docs/take_screenshots.py
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image, ImageDraw  # noqa: E402
from playwright.sync_api import Page, expect  # noqa: E402

from bench.browser import served_app, two_friends  # noqa: E402
from tests import media_samples  # noqa: E402
from tests.e2e.test_accounts import log_in  # noqa: E402
from tests.e2e.test_expiry import attach  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TIMEOUT = 30_000


def harbour() -> bytes:
    """A small painted scene: sky gradient, sun, sea (a flat test card would look broken)."""
    image = Image.new("RGB", (1200, 800))
    draw = ImageDraw.Draw(image)
    for y in range(520):
        t = y / 520
        draw.line(
            [(0, y), (1200, y)], fill=(int(40 + 215 * t), int(60 + 100 * t), int(140 - 40 * t))
        )
    draw.ellipse((520, 340, 700, 520), fill=(255, 200, 90))
    for y in range(520, 800):
        t = (y - 520) / 280
        draw.line([(0, y), (1200, y)], fill=(int(30 + 30 * t), int(70 + 40 * t), int(120 + 40 * t)))
    for x in range(80, 1200, 260):
        draw.polygon([(x, 560), (x + 90, 560), (x + 45, 470)], fill=(240, 240, 235))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def send(page: Page, text: str) -> None:
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")
    expect(page.locator(".message-mine .message-body", has_text=text)).to_be_visible(
        timeout=TIMEOUT
    )


def theme(page: Page, mode: str) -> None:
    """Follow the system's light or dark mode (the default theme follows the system)."""
    page.emulate_media(color_scheme=mode)
    page.wait_for_function(
        "(dark) => document.documentElement.classList.contains('dark') === dark",
        arg=mode == "dark",
    )


def shoot(page: Page, name: str) -> None:
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-sonner-toast]')].length === 0",
        timeout=TIMEOUT,
    )
    page.locator("#message-list").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    page.screenshot(path=str(OUT / f"{name}.png"))
    print("wrote", OUT / f"{name}.png")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with served_app() as base, two_friends(base) as (ada, bob):
        for page in (ada, bob):
            page.set_viewport_size(DESKTOP)
        bob.goto(base + "/settings")
        bob.get_by_label("Status").fill("Sailing until Friday")
        bob.get_by_role("button", name="Save profile").click()
        bob.locator("#picture-picker").set_input_files(
            [{"name": "bob.png", "mimeType": "image/png", "buffer": media_samples.png(256, 256)}]
        )
        expect(bob.locator("img.rt-AvatarImage")).to_be_visible(timeout=TIMEOUT)
        bob.goto(base + "/")
        bob.get_by_role("radio", name="Friends").click(timeout=TIMEOUT)
        bob.get_by_role("button", name="Message ada").click(timeout=TIMEOUT)

        send(ada, "Morning! Did the photos from the trip come out?")
        send(bob, "They did. Sending the best ones now")
        attach(
            bob,
            ("harbour.jpg", "image/jpeg", harbour()),
            ("sunset.webm", "video/webm", media_samples.webm()),
        )
        send(bob, "The harbour at 7am, and the sunset")
        attach(bob, ("waves.wav", "audio/wav", media_samples.wav(3.0)))
        attach(bob, ("itinerary.pdf", "application/pdf", b"%PDF-1.4\n%\xe2\xe3\n1 0 obj\n"))
        send(bob, "Sound of the waves, and the plan for next time")
        ada.get_by_label("Disappearing timer").click()
        ada.get_by_role("option", name="1 hour").click()
        send(ada, "Gorgeous. My door code is 4711, this one deletes itself in an hour")
        expect(ada.locator(".message-theirs video")).to_be_visible(timeout=TIMEOUT)

        ada.get_by_role("radio", name="Chats").click()
        for mode in ("light", "dark"):
            theme(ada, mode)
            shoot(ada, f"chat-{mode}")
        phone = ada.context.browser.new_context(viewport=PHONE).new_page()  # type: ignore[union-attr]
        log_in(phone, base, "ada")
        phone.get_by_role("radio", name="Chats").click(timeout=TIMEOUT)
        phone.get_by_role("button", name="Conversation with bob").click(timeout=TIMEOUT)
        expect(phone.locator(".message-theirs video")).to_be_visible(timeout=TIMEOUT)
        for mode in ("light", "dark"):
            theme(phone, mode)
            shoot(phone, f"phone-conversation-{mode}")
        phone.goto(base + "/settings")
        expect(phone.get_by_role("heading", name="Settings")).to_be_visible(timeout=TIMEOUT)
        theme(phone, "dark")
        phone.screenshot(path=str(OUT / "phone-settings-dark.png"))
        settings = ada.context.new_page()
        settings.set_viewport_size(DESKTOP)
        settings.goto(base + "/settings")
        expect(settings.get_by_role("heading", name="Settings")).to_be_visible(timeout=TIMEOUT)
        theme(settings, "light")
        settings.screenshot(path=str(OUT / "settings-light.png"))
        register = ada.context.browser.new_context(viewport=DESKTOP).new_page()  # type: ignore[union-attr]
        register.goto(base + "/register")
        theme(register, "light")
        register.screenshot(path=str(OUT / "register-light.png"))
        print("done:", sorted(p.name for p in OUT.glob("*.png")))


if __name__ == "__main__":
    main()
