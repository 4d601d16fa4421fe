"""Friend requests, friendships and blocks over the JSON API."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from iris_reflex.settings import get_settings
from tests.api.test_api_openapi import (
    Headers,
    ada_and_bob,
    befriend,
    client_fixture,  # noqa: F401 (the ``client`` fixture)
    parse_utc,
    sign_up,
)


def _ask(client: TestClient, who: Headers, username: str):
    return client.post("/api/friends/requests", json={"username": username}, headers=who)


def _names(users: list[dict]) -> list[str]:
    return [u["username"] for u in users]


def test_request_is_pending_and_listed_on_both_sides(client):
    ada, bob = sign_up(client, "ada"), sign_up(client, "bob")
    response = _ask(client, ada, "BOB")
    assert response.status_code == 201
    assert response.json()["status"] == "pending"
    request_id = response.json()["id"]

    outgoing = client.get("/api/friends/requests", headers=ada).json()
    assert outgoing["incoming"] == []
    [sent] = outgoing["outgoing"]
    assert sent["id"] == request_id
    assert set(sent["requester"]) == {"id", "username", "display_name"}
    assert sent["requester"]["username"] == "ada"
    assert sent["addressee"]["username"] == "bob"
    parse_utc(sent["created_at"])

    incoming = client.get("/api/friends/requests", headers=bob).json()
    assert [r["id"] for r in incoming["incoming"]] == [request_id]
    assert incoming["outgoing"] == []


def test_accepting_makes_friends_on_both_sides(client):
    ada, bob = ada_and_bob(client)
    assert _names(client.get("/api/friends", headers=ada).json()) == ["bob"]
    assert _names(client.get("/api/friends", headers=bob).json()) == ["ada"]
    assert client.get("/api/friends/requests", headers=bob).json() == {
        "incoming": [],
        "outgoing": [],
    }


def test_crossing_request_accepts_with_200(client):
    ada, bob = sign_up(client, "ada"), sign_up(client, "bob")
    first = _ask(client, ada, "bob").json()
    response = _ask(client, bob, "ada")
    assert response.status_code == 200
    assert response.json() == {"id": first["id"], "status": "accepted"}
    assert _names(client.get("/api/friends", headers=ada).json()) == ["bob"]


def test_duplicate_request_and_request_to_a_friend_conflict(client):
    ada, bob = sign_up(client, "ada"), sign_up(client, "bob")
    request_id = _ask(client, ada, "bob").json()["id"]
    again = _ask(client, ada, "bob")
    assert again.status_code == 409
    assert again.json() == {"detail": "You already sent a request to this user."}
    client.post(f"/api/friends/requests/{request_id}/accept", headers=bob)
    assert _ask(client, ada, "bob").status_code == 409
    assert _ask(client, bob, "ada").status_code == 409


def test_request_to_self_is_422_and_to_nobody_404(client):
    ada = sign_up(client, "ada")
    assert _ask(client, ada, "ADA").status_code == 422
    response = _ask(client, ada, "nobody")
    assert response.status_code == 404
    assert response.json() == {"detail": "No user with that username."}


@pytest.mark.parametrize("payload", [{}, {"username": None}, {"username": ["bob"]}, {"user": "b"}])
def test_request_with_malformed_body_is_422(client, payload):
    ada = sign_up(client, "ada")
    response = client.post("/api/friends/requests", json=payload, headers=ada)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


def test_only_the_addressee_can_accept_or_decline(client):
    ada, bob, eve = sign_up(client, "ada"), sign_up(client, "bob"), sign_up(client, "eve")
    request_id = _ask(client, ada, "bob").json()["id"]
    for who in (ada, eve):
        for action in ("accept", "decline"):
            response = client.post(f"/api/friends/requests/{request_id}/{action}", headers=who)
            assert response.status_code == 404, (action, response.text)
            assert response.json() == {"detail": "No such friend request."}
    assert client.delete(f"/api/friends/requests/{request_id}", headers=eve).status_code == 404
    assert client.delete(f"/api/friends/requests/{request_id}", headers=bob).status_code == 404
    assert len(client.get("/api/friends/requests", headers=bob).json()["incoming"]) == 1


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "1.5", str(2**31)])
def test_request_ids_that_cannot_exist_are_422(client, bad):
    ada = sign_up(client, "ada")
    assert client.post(f"/api/friends/requests/{bad}/accept", headers=ada).status_code == 422
    assert client.delete(f"/api/friends/requests/{bad}", headers=ada).status_code == 422


def test_unknown_request_id_is_404(client):
    ada = sign_up(client, "ada")
    assert client.post("/api/friends/requests/999999/accept", headers=ada).status_code == 404
    assert client.post("/api/friends/requests/999999/decline", headers=ada).status_code == 404
    assert client.delete("/api/friends/requests/999999", headers=ada).status_code == 404


def test_decline_removes_the_request_for_both(client):
    ada, bob = sign_up(client, "ada"), sign_up(client, "bob")
    request_id = _ask(client, ada, "bob").json()["id"]
    response = client.post(f"/api/friends/requests/{request_id}/decline", headers=bob)
    assert response.status_code == 204
    assert response.content == b""
    for who in (ada, bob):
        assert client.get("/api/friends/requests", headers=who).json() == {
            "incoming": [],
            "outgoing": [],
        }
    again = client.post(f"/api/friends/requests/{request_id}/decline", headers=bob)
    assert again.status_code == 404


def test_requester_cancels_and_can_ask_again(client):
    ada, bob = sign_up(client, "ada"), sign_up(client, "bob")
    request_id = _ask(client, ada, "bob").json()["id"]
    assert client.delete(f"/api/friends/requests/{request_id}", headers=ada).status_code == 204
    assert client.get("/api/friends/requests", headers=bob).json()["incoming"] == []
    assert _ask(client, ada, "bob").status_code == 201


def test_remove_friend_ends_it_on_both_sides(client):
    ada, bob = ada_and_bob(client)
    assert client.delete("/api/friends/BOB", headers=ada).status_code == 204
    assert client.get("/api/friends", headers=ada).json() == []
    assert client.get("/api/friends", headers=bob).json() == []
    again = client.delete("/api/friends/bob", headers=ada)
    assert again.status_code == 404
    assert again.json() == {"detail": "Not in your friends."}


def test_removing_a_stranger_or_nobody_is_404(client):
    ada, _ = sign_up(client, "ada"), sign_up(client, "eve")
    assert client.delete("/api/friends/eve", headers=ada).status_code == 404
    assert client.delete("/api/friends/nobody", headers=ada).status_code == 404
    assert client.delete("/api/friends/ada", headers=ada).status_code == 404


def test_block_ends_friendship_is_listed_and_idempotent(client):
    ada, bob = ada_and_bob(client)
    assert client.post("/api/blocks", json={"username": "bob"}, headers=ada).status_code == 204
    assert client.post("/api/blocks", json={"username": "Bob"}, headers=ada).status_code == 204
    assert _names(client.get("/api/blocks", headers=ada).json()) == ["bob"]
    assert client.get("/api/blocks", headers=bob).json() == []
    assert client.get("/api/friends", headers=ada).json() == []
    assert client.get("/api/friends", headers=bob).json() == []


def test_blocked_users_request_is_hidden_and_blocker_cannot_ask(client):
    ada, bob = sign_up(client, "ada"), sign_up(client, "bob")
    client.post("/api/blocks", json={"username": "bob"}, headers=ada)
    # Bob is not told: his request looks pending to him ...
    assert _ask(client, bob, "ada").status_code == 201
    assert len(client.get("/api/friends/requests", headers=bob).json()["outgoing"]) == 1
    # ... and Ada never sees it, nor can act on it.
    assert client.get("/api/friends/requests", headers=ada).json()["incoming"] == []
    request_id = client.get("/api/friends/requests", headers=bob).json()["outgoing"][0]["id"]
    assert client.post(f"/api/friends/requests/{request_id}/accept", headers=ada).status_code == 404
    refused = _ask(client, ada, "bob")
    assert refused.status_code == 403
    assert "Unblock" in refused.json()["detail"]


def test_block_refusals(client):
    ada = sign_up(client, "ada")
    assert client.post("/api/blocks", json={"username": "nobody"}, headers=ada).status_code == 404
    assert client.post("/api/blocks", json={"username": "ada"}, headers=ada).status_code == 422
    assert client.post("/api/blocks", json={}, headers=ada).status_code == 422


def test_unblock_lifts_the_block_but_not_the_friendship(client):
    ada, bob = ada_and_bob(client)
    client.post("/api/blocks", json={"username": "bob"}, headers=ada)
    assert client.delete("/api/blocks/bob", headers=ada).status_code == 204
    assert client.delete("/api/blocks/bob", headers=ada).status_code == 204
    assert client.get("/api/blocks", headers=ada).json() == []
    assert client.get("/api/friends", headers=ada).json() == []
    befriend(client, ada, bob, "bob")
    assert _names(client.get("/api/friends", headers=ada).json()) == ["bob"]
    assert client.delete("/api/blocks/nobody", headers=ada).status_code == 404


def test_nul_or_surrogate_in_a_username_finds_nobody(client):
    ada = sign_up(client, "ada")
    assert _ask(client, ada, "b\x00ob").status_code == 404
    assert client.post("/api/blocks", json={"username": "b\x00b"}, headers=ada).status_code == 404
    assert client.delete("/api/blocks/b%00b", headers=ada).status_code == 404
    assert client.delete("/api/friends/b%00b", headers=ada).status_code == 404
    surrogate = client.post(
        "/api/friends/requests",
        content=b'{"username": "b\\ud800b"}',
        headers={**ada, "content-type": "application/json"},
    )
    assert surrogate.status_code == 422


def test_friend_requests_over_the_limit_answer_429_with_retry_after(client, monkeypatch):
    monkeypatch.setattr(get_settings(), "friend_requests_per_hour", 2)
    eve, ada = sign_up(client, "eve"), sign_up(client, "ada")
    for _ in range(2):
        sent = _ask(client, eve, "ada")
        assert sent.status_code == 201
        cancel = client.delete(f"/api/friends/requests/{sent.json()['id']}", headers=eve)
        assert cancel.status_code == 204

    response = _ask(client, eve, "ada")

    assert response.status_code == 429
    assert 0 < int(response.headers["retry-after"]) <= 3600
    assert response.json()["detail"].startswith("You have sent many friend requests")
    assert client.get("/api/friends/requests", headers=ada).json()["incoming"] == []
