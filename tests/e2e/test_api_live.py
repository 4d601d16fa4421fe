"""What a script does through the JSON API shows up live in both people's open browser tabs.

Ada and Bob sign up in Chromium; everything else Ada does with ``curl``-like calls and her
bearer token. Neither page is reloaded: each change must arrive through the same live push
that the web UI's own actions use (``live.notify``).
"""

from __future__ import annotations

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.e2e.test_accounts import PASSWORD
from tests.e2e.test_chat import TIMEOUT, friends_tab, signed_up


def _token(api: httpx.Client, username: str) -> dict[str, str]:
    response = api.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _open_chat(page: Page, friend: str) -> None:
    page.get_by_role("button", name=f"Message {friend}").click(timeout=TIMEOUT)
    expect(page.locator("#conversation-title")).to_contain_text(friend, timeout=TIMEOUT)


def test_message_sent_through_the_api_appears_live_for_both(browser: Browser, iris_url: str):
    ada_page = signed_up(browser, iris_url, "Ada")
    bob_page = signed_up(browser, iris_url, "Bob")
    friends_tab(ada_page)
    friends_tab(bob_page)

    with httpx.Client(base_url=iris_url, timeout=30) as api:
        ada, bob = _token(api, "Ada"), _token(api, "Bob")

        # A friend request sent and accepted through the API reaches both Friends tabs.
        sent = api.post("/api/friends/requests", json={"username": "bob"}, headers=ada)
        assert sent.status_code == 201, sent.text
        expect(bob_page.get_by_role("button", name="Accept Ada")).to_be_visible(timeout=TIMEOUT)
        accepted = api.post(f"/api/friends/requests/{sent.json()['id']}/accept", headers=bob)
        assert accepted.status_code == 200, accepted.text
        _open_chat(ada_page, "Bob")
        _open_chat(bob_page, "Ada")

        # Ada's script sends; Bob's open conversation shows it, and so does Ada's own tab.
        message = api.post(
            "/api/conversations/Bob/messages", json={"body": "Sent with curl"}, headers=ada
        )
        assert message.status_code == 201, message.text
        expect(bob_page.locator(".message-theirs .message-body")).to_have_text(
            "Sent with curl", timeout=TIMEOUT
        )
        expect(ada_page.locator(".message-mine .message-body")).to_have_text(
            "Sent with curl", timeout=TIMEOUT
        )

        # Bob's tab had the conversation open, so it read the message: the API says so, and
        # Ada's tab shows the receipt.
        expect(ada_page.locator(".message-mine").get_by_label("Read")).to_be_visible(
            timeout=TIMEOUT
        )
        page = api.get("/api/conversations/Bob/messages", headers=ada).json()
        assert page[0]["id"] == message.json()["id"]
        assert page[0]["read_at"] is not None

        # Deleting through the API removes it from both screens.
        deleted = api.delete(f"/api/messages/{message.json()['id']}", headers=ada)
        assert deleted.status_code == 204
        expect(bob_page.locator(".message-theirs .message-body")).to_have_count(0, timeout=TIMEOUT)
        expect(ada_page.locator(".message-mine .message-body")).to_have_count(0, timeout=TIMEOUT)
