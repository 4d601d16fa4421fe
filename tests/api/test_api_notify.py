"""After an API action commits, the open tabs of everyone concerned are told: the action
publishes an event and ``live.fanout`` turns it into pushes.

``push.push_to_user`` and ``push.push_to_tabs`` are replaced by a recorder (every user has one
open tab here): what matters is who is told what; that a push really updates a tab is shown
end to end in ``tests/e2e/test_api_live.py``. The
fan-out runs on the app's loop after the response; ``settle`` waits for it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from fastapi.testclient import TestClient

from iris_reflex.jobs import sweeper
from iris_reflex.live import outbox, push
from iris_reflex.live.events import Change
from tests.api.test_api_openapi import (
    ada_and_bob,
    client_fixture,  # noqa: F401 (the ``client`` fixture)
    send,
    sign_up,
)


class Pushes(list[tuple[int, str]]):
    """Every push as (user id, kind of change), in order; ``changes`` the changes themselves."""

    def __init__(self, client: TestClient) -> None:
        super().__init__()
        self._client = client
        self.changes: list[Change] = []

    def settle(self) -> Pushes:
        """The pushes so far, once every fan-out started has finished, sorted (the pushes of
        one event to different users run at the same time)."""
        assert self._client.portal is not None
        self._client.portal.call(outbox.settle)
        self.sort()
        return self


@pytest.fixture
def pushes(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pushes]:
    seen = Pushes(client)

    async def record(
        user_id: int,
        change: Change,
        *,
        skip_token: str | None = None,
        tokens: Sequence[str] | None = None,
    ) -> int:
        assert skip_token is None  # the API has no tab of its own to skip
        assert tokens in (None, [f"tab-of-{user_id}"])
        seen.append((user_id, change.kind.value))
        seen.changes.append(change)
        return 0

    async def one_tab_each(user_id: int, *, skip_token: str | None = None) -> list[str]:
        assert skip_token is None
        return [f"tab-of-{user_id}"]

    async def one_tab_of_each(
        changes: Sequence[tuple[int, Change]], *, skip_token: str | None = None
    ) -> list[list[str]]:
        assert skip_token is None
        return [[f"tab-of-{user_id}"] for user_id, _ in changes]

    async def record_tabs(user_id: int, tokens: list[str], change: Change) -> int:
        assert tokens == [f"tab-of-{user_id}"]
        return await record(user_id, change)

    monkeypatch.setattr(push, "push_to_user", record)
    monkeypatch.setattr(push, "tabs_of", one_tab_each)
    monkeypatch.setattr(push, "hand_over", one_tab_of_each)
    monkeypatch.setattr(push, "push_to_tabs", record_tabs)
    yield seen


def _ids(client, *headers) -> list[int]:  # type: ignore[no-untyped-def]
    return [client.get("/api/me", headers=h).json()["id"] for h in headers]


def test_sent_message_reaches_recipient_and_senders_tabs(client, pushes, monkeypatch):
    deadlines = []
    monkeypatch.setattr(sweeper, "wake_at", deadlines.append)
    ada, bob = ada_and_bob(client)
    ada_id, bob_id = _ids(client, ada, bob)
    pushes.settle().clear()
    message = send(client, ada, "bob", "hi", expires_in_seconds=60)
    assert pushes.settle() == sorted([(bob_id, "message_arrived"), (ada_id, "message_arrived")])
    # Each side is handed the message as read for that user (once per user, not per tab).
    views = [change.message for change in pushes.changes]
    assert [(v.id, v.body) for v in views if v is not None] == [(message["id"], "hi")] * 2
    assert [d.isoformat().replace("+00:00", "Z") for d in deadlines] == [message["expires_at"]]


def test_refused_action_tells_nobody(client, pushes):
    ada, _ = ada_and_bob(client)
    pushes.settle().clear()
    client.post("/api/conversations/bob/messages", json={"body": ""}, headers=ada)
    client.post("/api/friends/requests", json={"username": "bob"}, headers=ada)
    client.delete("/api/messages/12345", headers=ada)
    assert pushes.settle() == []


def test_read_receipt_reaches_reader_and_sender(client, pushes, monkeypatch):
    ada, bob = ada_and_bob(client)
    ada_id, bob_id = _ids(client, ada, bob)
    send(client, ada, "bob")
    pushes.settle().clear()
    deadlines = []
    monkeypatch.setattr(sweeper, "wake_at", deadlines.append)
    client.post("/api/conversations/ada/read", json={}, headers=bob)
    assert pushes.settle() == sorted([(bob_id, "conversations"), (ada_id, "receipts")])
    assert deadlines == [None]  # a message without a timer starts no countdown
    pushes.settle().clear()
    client.post("/api/conversations/ada/read", json={}, headers=bob)  # nothing left unread
    assert pushes.settle() == []


def test_reading_an_after_read_message_wakes_the_sweep_at_its_new_deadline(
    client, pushes, monkeypatch
):
    ada, bob = ada_and_bob(client)
    send(client, ada, "bob", "soon", expires_in_seconds=30, timer_mode="after_read")
    send(client, ada, "bob", "later", expires_in_seconds=90, timer_mode="after_read")
    deadlines = []
    monkeypatch.setattr(sweeper, "wake_at", deadlines.append)
    client.post("/api/conversations/ada/read", json={}, headers=bob)
    page = client.get("/api/conversations/ada/messages", headers=bob).json()
    soonest = min(m["expires_at"] for m in page)
    assert [d.isoformat().replace("+00:00", "Z") for d in deadlines] == [soonest]


def test_timer_and_delete_refresh_both_conversations(client, pushes):
    ada, bob = ada_and_bob(client)
    ada_id, bob_id = _ids(client, ada, bob)
    message = send(client, ada, "bob")
    pushes.settle().clear()
    client.put("/api/conversations/bob/timer", json={"seconds": 60}, headers=ada)
    client.delete(f"/api/messages/{message['id']}", headers=ada)
    both = [(bob_id, "conversations"), (ada_id, "conversations")]
    assert pushes.settle() == sorted(both + both)


def test_friend_actions_refresh_both_peoples_lists(client, pushes):
    ada, bob = sign_up(client, "ada"), sign_up(client, "bob")
    ada_id, bob_id = _ids(client, ada, bob)
    both = sorted([(ada_id, "friends"), (bob_id, "friends")])
    pushes.settle().clear()
    request_id = client.post("/api/friends/requests", json={"username": "bob"}, headers=ada).json()
    assert pushes.settle() == both
    for method, path, headers in (
        ("post", f"/api/friends/requests/{request_id['id']}/accept", bob),
        ("delete", "/api/friends/bob", ada),
        ("post", "/api/blocks", ada),
        ("delete", "/api/blocks/bob", ada),
    ):
        pushes.clear()
        kwargs = {"json": {"username": "bob"}} if path == "/api/blocks" else {}
        client.request(method.upper(), path, headers=headers, **kwargs)
        assert pushes.settle() == both, (method, path)


def test_new_display_name_or_status_reaches_friends_and_own_tabs(client, pushes):
    """A status set through the API shows in friends' lists like one set in Settings (it
    used to reach nobody)."""
    ada, bob = ada_and_bob(client)
    ada_id, bob_id = _ids(client, ada, bob)
    pushes.settle().clear()
    client.patch("/api/me", json={"status_message": "away"}, headers=ada)
    assert pushes.settle() == sorted([(bob_id, "friends"), (ada_id, "friends")])
    pushes.clear()
    client.patch("/api/me", json={"display_name": "Countess"}, headers=ada)
    assert pushes.settle() == sorted([(bob_id, "friends"), (ada_id, "friends")])


def test_failing_push_is_logged_and_the_action_still_succeeds(client, monkeypatch, caplog):
    ada, bob = ada_and_bob(client)

    async def broken(*_args, **_kwargs) -> int:  # type: ignore[no-untyped-def]
        raise RuntimeError("redis is down")

    monkeypatch.setattr(push, "push_to_user", broken)
    monkeypatch.setattr(push, "tabs_of", broken)
    monkeypatch.setattr(push, "hand_over", broken)
    response = client.post("/api/conversations/bob/messages", json={"body": "hi"}, headers=ada)
    assert response.status_code == 201
    assert client.portal is not None
    client.portal.call(outbox.settle)
    assert "live fan-out of MessageSent failed" in caplog.text
    assert len(client.get("/api/conversations/ada/messages", headers=bob).json()) == 1
