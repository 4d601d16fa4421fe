"""Conversations over the JSON API: send, page, read, timers, delete, and who may do what."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from iris_reflex.api.conversations import UNSUPPORTED_BODY
from tests.api.test_api_openapi import (
    Headers,
    ada_and_bob,
    befriend,
    client_fixture,  # noqa: F401 (the ``client`` fixture)
    parse_utc,
    send,
    sign_up,
)

MESSAGE_FIELDS = {
    "id",
    "conversation_id",
    "sender_id",
    "recipient_id",
    "kind",
    "body",
    "created_at",
    "expires_at",
    "timer_seconds",
    "timer_mode",
    "read_at",
    "attachments",
}


def _page(client: TestClient, who: Headers, friend: str, **params: object) -> list[dict]:
    response = client.get(f"/api/conversations/{friend}/messages", params=params, headers=who)
    assert response.status_code == 200, response.text
    return list(response.json())


def _post(client: TestClient, who: Headers, friend: str, payload: object):
    return client.post(f"/api/conversations/{friend}/messages", json=payload, headers=who)


# ------------------------------------------------------------------------------------ send


def test_sent_message_is_returned_and_seen_by_both(client):
    ada, bob = ada_and_bob(client)
    message = send(client, ada, "BOB", "  Hello <b>Bob</b>  ")
    assert set(message) == MESSAGE_FIELDS
    assert message["body"] == "Hello <b>Bob</b>"
    assert message["kind"] == "text"
    assert message["expires_at"] is None and message["read_at"] is None
    assert message["attachments"] == []
    parse_utc(message["created_at"])
    assert _page(client, bob, "ada") == [message]
    assert _page(client, ada, "bob") == [message]


def test_conversation_list_shows_friend_last_message_and_unread(client):
    ada, bob = ada_and_bob(client)
    assert client.get("/api/conversations", headers=bob).json() == []
    send(client, ada, "bob", "one")
    last = send(client, ada, "bob", "two")
    [row] = client.get("/api/conversations", headers=bob).json()
    assert row["friend"]["username"] == "ada"
    assert row["last_message"] == last
    assert row["unread"] == 2
    assert parse_utc(row["last_activity"]) == parse_utc(last["created_at"])
    [mine] = client.get("/api/conversations", headers=ada).json()
    assert mine["unread"] == 0
    assert mine["id"] == row["id"] == last["conversation_id"]


def test_conversations_are_ordered_by_latest_activity(client):
    ada, bob = ada_and_bob(client)
    cy = sign_up(client, "cyd")
    befriend(client, ada, cy, "cyd")
    send(client, ada, "bob")
    send(client, ada, "cyd")
    names = [r["friend"]["username"] for r in client.get("/api/conversations", headers=ada).json()]
    assert names == ["cyd", "bob"]
    send(client, bob, "ada")
    names = [r["friend"]["username"] for r in client.get("/api/conversations", headers=ada).json()]
    assert names == ["bob", "cyd"]


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        ({"body": ""}, "A message cannot be empty."),
        ({"body": "   "}, "A message cannot be empty."),
        ({}, "A message cannot be empty."),
        ({"body": "x" * 4001}, "A message can have at most 4,000 characters."),
        ({"body": "a\x00b"}, "A message cannot contain NUL characters."),
        ({"body": "hi", "expires_in_seconds": 4}, "A timer runs from 5 seconds to 365 days."),
        ({"body": "hi", "expires_in_seconds": -5}, "A timer runs from 5 seconds to 365 days."),
        ({"body": "hi", "expires_in_seconds": 10**20}, "A timer runs from 5 seconds to 365 days."),
        ({"body": "hi", "attachment_ids": [99999]}, None),
    ],
)
def test_send_refuses_rule_breaking_input(client, payload, detail):
    ada, bob = ada_and_bob(client)
    response = _post(client, ada, "bob", payload)
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], str)
    if detail is not None:
        assert response.json()["detail"] == detail
    assert _page(client, bob, "ada") == []


@pytest.mark.parametrize(
    "payload",
    [
        {"body": 5},
        {"body": "hi", "timer_mode": "whenever"},
        {"body": "hi", "expires_in_seconds": "soon"},
        {"body": "hi", "sender_id": 1},
        {"body": "hi", "attachment_ids": [0]},
        ["hi"],
    ],
)
def test_send_refuses_malformed_json_with_fastapis_detail_list(client, payload):
    ada, _ = ada_and_bob(client)
    response = _post(client, ada, "bob", payload)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)
    assert {"loc", "msg", "type"} <= set(response.json()["detail"][0])


def test_send_refuses_broken_json_and_other_content_types(client):
    ada, _ = ada_and_bob(client)
    broken = client.post(
        "/api/conversations/bob/messages",
        content=b'{"body": ',
        headers={**ada, "content-type": "application/json"},
    )
    assert broken.status_code == 422
    assert isinstance(broken.json()["detail"], list)
    text = client.post(
        "/api/conversations/bob/messages",
        content=b"hi",
        headers={**ada, "content-type": "text/plain"},
    )
    assert text.status_code == 415
    assert text.json() == {"detail": UNSUPPORTED_BODY}


def test_send_to_stranger_blocked_or_unknown_is_404(client):
    ada, bob = ada_and_bob(client)
    sign_up(client, "eve")
    for name in ("eve", "nobody", "ada"):
        response = _post(client, ada, name, {"body": "hi"})
        assert response.status_code == 404
        assert response.json() == {"detail": "No such conversation."}
    client.post("/api/blocks", json={"username": "ada"}, headers=bob)
    assert _post(client, ada, "bob", {"body": "hi"}).status_code == 404


def test_timer_on_a_message_sets_its_deadline(client):
    ada, bob = ada_and_bob(client)
    timed = send(client, ada, "bob", "soon gone", expires_in_seconds=30)
    created = parse_utc(timed["created_at"])
    assert parse_utc(timed["expires_at"]) - created == timedelta(seconds=30)
    assert (timed["timer_seconds"], timed["timer_mode"]) == (30, "from_send")
    after_read = send(client, ada, "bob", "read me", expires_in_seconds=60, timer_mode="after_read")
    assert after_read["timer_mode"] == "after_read"
    assert parse_utc(after_read["expires_at"]) - created >= timedelta(days=29)


# ---------------------------------------------------------------------------------- paging


def test_history_pages_newest_first_with_before_and_limit(client):
    ada, bob = ada_and_bob(client)
    sent = [
        send(client, ada if i % 2 else bob, "bob" if i % 2 else "ada", f"m{i}") for i in range(5)
    ]
    ids = [m["id"] for m in sent]
    first = _page(client, ada, "bob", limit=2)
    assert [m["id"] for m in first] == ids[:-3:-1]
    second = _page(client, ada, "bob", limit=2, before=first[-1]["id"])
    assert [m["id"] for m in second] == [ids[2], ids[1]]
    last = _page(client, ada, "bob", limit=2, before=second[-1]["id"])
    assert [m["id"] for m in last] == [ids[0]]
    assert _page(client, ada, "bob", before=ids[0]) == []
    assert len(_page(client, bob, "ada")) == 5


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"limit": "x"}, {"before": 0}, {"before": str(2**31)}],
)
def test_history_refuses_impossible_paging(client, params):
    ada, _ = ada_and_bob(client)
    response = client.get("/api/conversations/bob/messages", params=params, headers=ada)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


def test_history_accepts_largest_limit_and_before(client):
    ada, _ = ada_and_bob(client)
    send(client, ada, "bob")
    assert len(_page(client, ada, "bob", limit=100, before=2**31 - 1)) == 1


# ---------------------------------------------------------------------------- read receipts


def test_reading_marks_messages_and_sender_sees_it(client):
    ada, bob = ada_and_bob(client)
    first = send(client, ada, "bob", "one")
    second = send(client, ada, "bob", "two")
    response = client.post("/api/conversations/ada/read", json={"up_to_message_id": first["id"]},
                           headers=bob)  # fmt: skip
    assert response.status_code == 200
    assert response.json() == {"message_ids": [first["id"]]}
    [row] = client.get("/api/conversations", headers=bob).json()
    assert row["unread"] == 1
    everything = client.post("/api/conversations/ada/read", json={}, headers=bob)
    assert everything.json() == {"message_ids": [second["id"]]}
    again = client.post("/api/conversations/ada/read", json={}, headers=bob)
    assert again.json() == {"message_ids": []}
    seen_by_ada = {m["id"]: m["read_at"] for m in _page(client, ada, "bob")}
    parse_utc(seen_by_ada[first["id"]])
    parse_utc(seen_by_ada[second["id"]])


def test_reading_own_messages_changes_nothing(client):
    ada, _ = ada_and_bob(client)
    send(client, ada, "bob")
    response = client.post("/api/conversations/bob/read", json={}, headers=ada)
    assert response.json() == {"message_ids": []}


def test_read_refuses_bad_ids_and_strangers(client):
    ada, _ = ada_and_bob(client)
    eve = sign_up(client, "eve")
    bad = client.post("/api/conversations/bob/read", json={"up_to_message_id": 0}, headers=ada)
    assert bad.status_code == 422
    assert client.post("/api/conversations/ada/read", json={}, headers=eve).status_code == 404


# ---------------------------------------------------------------------------------- timers


def test_conversation_timer_writes_a_notice_and_applies_to_later_messages(client):
    ada, bob = ada_and_bob(client)
    response = client.put("/api/conversations/bob/timer", json={"seconds": 3600}, headers=ada)
    assert response.status_code == 200
    notice = response.json()
    assert notice["kind"] == "notice"
    assert notice["body"] == "ada set disappearing messages to 1 hour."
    later = send(client, bob, "ada", "timed by default")
    assert (later["timer_seconds"], later["timer_mode"]) == (3600, "from_send")
    untimed = send(client, bob, "ada", "not this one", expires_in_seconds=0)
    assert untimed["expires_at"] is None
    after = client.put(
        "/api/conversations/bob/timer", json={"seconds": 60, "mode": "after_read"}, headers=ada
    )
    assert after.json()["body"] == "ada set disappearing messages to 1 minute after reading."
    off = client.put("/api/conversations/bob/timer", json={"seconds": None}, headers=ada)
    assert off.json()["body"] == "ada turned off disappearing messages."
    assert send(client, bob, "ada")["expires_at"] is None
    assert [m["kind"] for m in _page(client, bob, "ada")].count("notice") == 3


@pytest.mark.parametrize(
    ("payload", "shape"),
    [
        ({"seconds": 3}, str),
        ({"seconds": 10**12}, str),
        ({"seconds": 60, "mode": "later"}, list),
        ({}, list),
        ({"seconds": "an hour"}, list),
    ],
)
def test_timer_refuses_bad_input(client, payload, shape):
    ada, _ = ada_and_bob(client)
    response = client.put("/api/conversations/bob/timer", json=payload, headers=ada)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], shape)


# ---------------------------------------------------------------------------------- delete


def test_sender_deletes_for_everyone(client):
    ada, bob = ada_and_bob(client)
    message = send(client, ada, "bob", "oops")
    kept = send(client, ada, "bob", "kept")
    response = client.delete(f"/api/messages/{message['id']}", headers=ada)
    assert response.status_code == 204
    assert [m["id"] for m in _page(client, bob, "ada")] == [kept["id"]]
    assert [m["id"] for m in _page(client, ada, "bob")] == [kept["id"]]
    assert client.delete(f"/api/messages/{message['id']}", headers=ada).status_code == 404


def test_only_the_sender_can_delete(client):
    ada, bob = ada_and_bob(client)
    eve = sign_up(client, "eve")
    message = send(client, ada, "bob")
    for who in (bob, eve):
        response = client.delete(f"/api/messages/{message['id']}", headers=who)
        assert response.status_code == 404
        assert response.json() == {"detail": "No such message."}
    assert client.delete("/api/messages/999999", headers=ada).status_code == 404
    assert client.delete("/api/messages/0", headers=ada).status_code == 422
    assert len(_page(client, bob, "ada")) == 1


def test_notices_cannot_be_deleted(client):
    ada, _ = ada_and_bob(client)
    notice = client.put("/api/conversations/bob/timer", json={"seconds": 60}, headers=ada).json()
    assert client.delete(f"/api/messages/{notice['id']}", headers=ada).status_code == 404


# --------------------------------------------------------------------------- third parties


def test_a_third_user_can_neither_read_nor_act_on_a_conversation(client):
    ada, bob = ada_and_bob(client)
    eve = sign_up(client, "eve")
    befriend(client, eve, ada, "ada")  # Eve knows Ada, but not Bob
    message = send(client, ada, "bob", "private")
    assert client.get("/api/conversations/bob/messages", headers=eve).status_code == 404
    assert [
        r["friend"]["username"] for r in client.get("/api/conversations", headers=eve).json()
    ] == []
    assert all(m["body"] != "private" for m in _page(client, eve, "ada"))
    assert _post(client, eve, "bob", {"body": "hi"}).status_code == 404
    assert client.post("/api/conversations/bob/read", json={}, headers=eve).status_code == 404
    timer = client.put("/api/conversations/bob/timer", json={"seconds": 60}, headers=eve)
    assert timer.status_code == 404
    assert client.delete(f"/api/messages/{message['id']}", headers=eve).status_code == 404
    assert client.post(
        "/api/conversations/ada/read", json={"up_to_message_id": message["id"]}, headers=eve
    ).json() == {"message_ids": []}
    assert _page(client, bob, "ada")[0]["read_at"] is None


def test_former_friends_lose_the_conversation(client):
    ada, bob = ada_and_bob(client)
    send(client, ada, "bob")
    assert client.delete("/api/friends/ada", headers=bob).status_code == 204
    assert client.get("/api/conversations", headers=ada).json() == []
    assert client.get("/api/conversations/bob/messages", headers=ada).status_code == 404


def test_nul_in_a_conversation_path_is_404_and_surrogate_text_422(client):
    ada, _ = ada_and_bob(client)
    assert client.get("/api/conversations/b%00ob/messages", headers=ada).status_code == 404
    assert _post(client, ada, "b%00ob", {"body": "hi"}).status_code == 404
    for raw in (b'{"body": "\\ud800"}', b'{"body": "hi", "extra": ["\\udfff"]}'):
        response = client.post(
            "/api/conversations/bob/messages",
            content=raw,
            headers={**ada, "content-type": "application/json"},
        )
        assert response.status_code == 422
        assert isinstance(response.json()["detail"], list)
    profile = client.patch(
        "/api/me",
        content=b'{"theme": "\\ud800"}',
        headers={**ada, "content-type": "application/json"},
    )
    assert profile.status_code == 422
