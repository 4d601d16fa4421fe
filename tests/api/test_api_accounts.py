"""Accounts over the JSON API: register, log in, log out, tokens, the caller's profile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from iris_reflex import clock
from iris_reflex.services import auth
from iris_reflex.settings import get_settings
from tests.api.test_api_openapi import (
    OUR_TAGS,
    PASSWORD,
    ada_and_bob,
    bearer,
    client_fixture,  # noqa: F401 (the ``client`` fixture)
    login,
    parse_utc,
    sign_up,
)


def _register(client: TestClient, username: str, password: str = PASSWORD):
    return client.post("/api/auth/register", json={"username": username, "password": password})


# --------------------------------------------------------------------------------- register


def test_register_returns_public_fields_only(client):
    response = _register(client, "Ada.Lovelace")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "username", "display_name"}
    assert body["username"] == "Ada.Lovelace"
    assert body["display_name"] == "Ada.Lovelace"


def test_register_taken_username_in_any_case_is_a_conflict(client):
    assert _register(client, "ada").status_code == 201
    response = _register(client, "ADA")
    assert response.status_code == 409
    assert response.json() == {"detail": "That username is taken."}


@pytest.mark.parametrize(
    ("username", "password"),
    [("ab", PASSWORD), ("bad name", PASSWORD), ("x" * 33, PASSWORD), ("ada", "short")],
)
def test_register_refuses_bad_username_or_password(client, username, password):
    response = _register(client, username, password)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], str)


@pytest.mark.parametrize(
    "payload",
    [{}, {"username": "ada"}, {"username": 5, "password": PASSWORD}, [], "ada"],
)
def test_register_refuses_malformed_body_with_detail_list(client, payload):
    response = client.post("/api/auth/register", json=payload)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


def test_register_refuses_unknown_fields(client):
    response = client.post(
        "/api/auth/register", json={"username": "ada", "password": PASSWORD, "admin": True}
    )
    assert response.status_code == 422


# ------------------------------------------------------------------------------------ login


def test_login_returns_bearer_token_that_works(client):
    _register(client, "ada")
    response = client.post("/api/auth/login", json={"username": "ADA", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert abs(body["expires_in"] - get_settings().jwt_lifetime_minutes * 60) <= 5
    me = client.get("/api/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["username"] == "ada"


@pytest.mark.parametrize(("username", "password"), [("ada", "wrong password"), ("nobody", "x")])
def test_login_refuses_wrong_password_and_unknown_user_alike(client, username, password):
    _register(client, "ada")
    response = client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 401
    assert response.json() == {"detail": auth.WRONG_CREDENTIALS}


def test_login_is_throttled_with_retry_after(client, monkeypatch):
    monkeypatch.setattr(get_settings(), "login_free_attempts", 2)
    _register(client, "ada")
    for _ in range(2):
        wrong = client.post("/api/auth/login", json={"username": "ada", "password": "nope"})
        assert wrong.status_code == 401
    response = client.post("/api/auth/login", json={"username": "ada", "password": PASSWORD})
    assert response.status_code == 429
    assert response.headers["retry-after"] == str(get_settings().login_base_delay_seconds)
    assert "Too many failed sign-in attempts" in response.json()["detail"]


def _wrong_login(client: TestClient, forwarded_for: str):
    return client.post(
        "/api/auth/login",
        json={"username": "ada", "password": "nope"},
        headers={"X-Forwarded-For": forwarded_for},
    )


@pytest.mark.parametrize("trusted", ["", "192.0.2.1", "198.51.100.0/24"])
def test_a_forwarded_address_is_ignored_unless_a_trusted_proxy_sent_it(
    client, monkeypatch, trusted
):
    """A guesser cannot pick a fresh address per attempt by writing X-Forwarded-For."""
    monkeypatch.setattr(get_settings(), "login_free_attempts", 1)
    monkeypatch.setattr(get_settings(), "trusted_proxies", trusted)
    _register(client, "ada")
    with TestClient(client.app, client=("203.0.113.50", 4321)) as direct:
        assert _wrong_login(direct, "192.0.2.10").status_code == 401
        assert _wrong_login(direct, "192.0.2.11").status_code == 429


def test_a_trusted_proxy_names_the_client(client, monkeypatch):
    monkeypatch.setattr(get_settings(), "login_free_attempts", 1)
    monkeypatch.setattr(get_settings(), "trusted_proxies", "10.0.0.0/8, 192.0.2.1")
    _register(client, "ada")
    with TestClient(client.app, client=("10.1.2.3", 4321)) as proxied:
        assert _wrong_login(proxied, "198.51.100.20").status_code == 401
        # Another client behind the same proxy is another pair: not slowed down.
        assert _wrong_login(proxied, "198.51.100.21").status_code == 401
        # Hops the client wrote itself (left of what our proxies added) are not believed.
        assert _wrong_login(proxied, "192.0.2.99, 198.51.100.20, 192.0.2.1").status_code == 429


def test_login_refuses_malformed_body(client):
    assert client.post("/api/auth/login", json={"username": "ada"}).status_code == 422
    response = client.post("/api/auth/login", content=b"not json", headers={"content-type": "x"})
    assert response.status_code == 422


# ----------------------------------------------------------------------------- logout, 401


def test_logout_ends_only_that_token(client):
    _register(client, "ada")
    first, second = login(client, "ada"), login(client, "ada")
    assert client.post("/api/auth/logout", headers=bearer(first)).status_code == 204
    gone = client.get("/api/me", headers=bearer(first))
    assert gone.status_code == 401
    assert gone.json() == {"detail": auth.SESSION_ENDED}
    assert client.get("/api/me", headers=bearer(second)).status_code == 200
    assert client.post("/api/auth/logout", headers=bearer(first)).status_code == 401


SIGNED_IN_ROUTES = [
    ("post", "/api/auth/logout", None),
    ("get", "/api/me", None),
    ("patch", "/api/me", {"display_name": "X"}),
    ("get", "/api/sessions", None),
    ("delete", "/api/sessions/abc", None),
    ("get", "/api/users/bob", None),
    ("get", "/api/friends", None),
    ("delete", "/api/friends/bob", None),
    ("get", "/api/friends/requests", None),
    ("post", "/api/friends/requests", {"username": "bob"}),
    ("post", "/api/friends/requests/1/accept", None),
    ("post", "/api/friends/requests/1/decline", None),
    ("delete", "/api/friends/requests/1", None),
    ("get", "/api/blocks", None),
    ("post", "/api/blocks", {"username": "bob"}),
    ("delete", "/api/blocks/bob", None),
    ("get", "/api/conversations", None),
    ("get", "/api/conversations/bob/messages", None),
    ("post", "/api/conversations/bob/messages", {"body": "hi"}),
    ("post", "/api/conversations/bob/read", {}),
    ("put", "/api/conversations/bob/timer", {"seconds": 60}),
    ("delete", "/api/messages/1", None),
]


def _bad_headers(kind: str, client: TestClient) -> dict[str, str]:
    if kind == "none":
        return {}
    if kind == "garbage":
        return bearer("not.a.token")
    if kind == "basic":
        return {"Authorization": "Basic YWRhOnB3"}
    token = login(client, "ada")
    if kind == "revoked":
        client.post("/api/auth/logout", headers=bearer(token))
        return bearer(token)
    if kind == "expired":
        later = timedelta(minutes=get_settings().jwt_lifetime_minutes, seconds=1)
        clock.set_clock(lambda: datetime.now(UTC) + later)
        return bearer(token)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["none", "garbage", "basic", "revoked", "expired"])
def test_every_signed_in_route_refuses_a_missing_or_bad_token(client, kind):
    ada_and_bob(client)
    try:
        headers = _bad_headers(kind, client)
        for method, path, payload in SIGNED_IN_ROUTES:
            kwargs = {"json": payload} if payload is not None else {}
            response = client.request(method, path, headers=headers, **kwargs)
            assert response.status_code == 401, (kind, method, path, response.text)
            assert isinstance(response.json()["detail"], str)
            assert response.headers["www-authenticate"] == "Bearer"
    finally:
        clock.set_clock(None)


def test_signed_in_routes_list_covers_the_document(client):
    spec = client.get("/api/openapi.json").json()
    listed = {(method, path) for method, path, _ in SIGNED_IN_ROUTES}
    documented = set()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if OUR_TAGS & set(operation["tags"]) and "security" in operation:
                documented.add((method, path))
    assert len(documented) == len(listed) == 22
    for method, path in documented:
        concrete = path.replace("{username}", "bob").replace("{request_id}", "1")
        concrete = concrete.replace("{message_id}", "1").replace("{session_id}", "abc")
        assert (method, concrete) in listed, (method, path)


# --------------------------------------------------------------------------------- profile


def test_me_shows_own_account_with_utc_timestamps(client):
    ada = sign_up(client, "ada")
    body = client.get("/api/me", headers=ada).json()
    assert body["username"] == "ada"
    assert body["status_message"] == ""
    assert body["read_receipts"] is True
    assert "password_hash" not in body
    parse_utc(body["created_at"])


def test_patch_me_trims_and_changes_only_what_is_given(client):
    ada = sign_up(client, "ada")
    response = client.patch("/api/me", json={"display_name": "  Ada L.  "}, headers=ada)
    assert response.status_code == 200
    assert response.json()["display_name"] == "Ada L."
    response = client.patch("/api/me", json={"status_message": " counting "}, headers=ada)
    assert response.json()["display_name"] == "Ada L."
    assert response.json()["status_message"] == "counting"
    response = client.patch("/api/me", json={"status_message": ""}, headers=ada)
    assert response.json()["status_message"] == ""
    assert client.get("/api/me", headers=ada).json()["display_name"] == "Ada L."


def test_patch_me_accepts_limits_exactly(client):
    ada = sign_up(client, "ada")
    response = client.patch(
        "/api/me", json={"display_name": "é" * 64, "status_message": "👩‍💻" * 28}, headers=ada
    )
    assert response.status_code == 200, response.text
    assert response.json()["display_name"] == "é" * 64


@pytest.mark.parametrize(
    "payload",
    [
        {"display_name": ""},
        {"display_name": "   "},
        {"display_name": "x" * 65},
        {"display_name": "a\x00b"},
        {"display_name": "two\nlines"},
        {"status_message": "x" * 141},
        {"status_message": "tab\there"},
        {"display_name": "fine", "status_message": "bell\x07"},
    ],
)
def test_patch_me_refuses_bad_values_and_writes_nothing(client, payload):
    ada = sign_up(client, "ada")
    response = client.patch("/api/me", json=payload, headers=ada)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], str)
    assert client.get("/api/me", headers=ada).json()["display_name"] == "ada"


def test_patch_me_refuses_unknown_fields_and_wrong_types(client):
    ada = sign_up(client, "ada")
    assert client.patch("/api/me", json={"username": "eve"}, headers=ada).status_code == 422
    assert client.patch("/api/me", json={"display_name": 5}, headers=ada).status_code == 422


def test_new_display_name_is_what_friends_see(client):
    ada, bob = ada_and_bob(client)
    client.patch("/api/me", json={"display_name": "Countess"}, headers=ada)
    friends = client.get("/api/friends", headers=bob).json()
    assert friends[0]["display_name"] == "Countess"


def test_user_lookup_shows_public_fields_in_any_case(client):
    ada = sign_up(client, "ada")
    sign_up(client, "Bob")
    response = client.get("/api/users/BOB", headers=ada)
    assert response.status_code == 200
    assert set(response.json()) == {"id", "username", "display_name"}
    assert response.json()["username"] == "Bob"
    assert client.get("/api/users/ada", headers=ada).json()["username"] == "ada"


@pytest.mark.parametrize("name", ["nobody", "bo", "b%", "b_b", "a" * 300])
def test_user_lookup_of_unknown_user_is_404(client, name):
    ada = sign_up(client, "ada")
    sign_up(client, "bob")
    response = client.get(f"/api/users/{name}", headers=ada)
    assert response.status_code == 404
    assert response.json() == {"detail": "No user with that username."}


def test_user_lookup_hides_someone_who_blocked_the_caller(client):
    ada, bob = ada_and_bob(client)
    assert client.post("/api/blocks", json={"username": "ada"}, headers=bob).status_code == 204
    assert client.get("/api/users/bob", headers=ada).status_code == 404
    assert client.get("/api/users/ada", headers=bob).status_code == 200


# ------------------------------------------------------------------- text no database stores


def test_nul_in_a_username_finds_nobody_on_every_database(client):
    ada = sign_up(client, "ada")
    nul = "a\x00da"
    assert client.get("/api/users/a%00da", headers=ada).status_code == 404
    login = client.post("/api/auth/login", json={"username": nul, "password": PASSWORD})
    assert login.status_code == 401
    register = client.post("/api/auth/register", json={"username": nul, "password": PASSWORD})
    assert register.status_code == 422


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/api/auth/login", '{"username": "a\\ud800b", "password": "xxxxxxxxx"}'),
        ("/api/auth/login", '{"username": "ada", "password": "\\udfffxxxxxxxxx"}'),
        ("/api/auth/register", '{"username": "newbie", "password": "\\ud800xxxxxxxxx"}'),
    ],
)
def test_lone_surrogates_are_not_text_and_are_refused(client, path, raw):
    sign_up(client, "ada")
    response = client.post(path, content=raw.encode(), headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "valid Unicode" in response.json()["detail"][0]["msg"]


def test_registrations_over_the_limit_answer_429_with_retry_after(client, monkeypatch):
    monkeypatch.setattr(get_settings(), "registrations_per_hour", 2)
    assert _register(client, "ada").status_code == 201
    assert _register(client, "bob").status_code == 201

    response = _register(client, "cyd")

    assert response.status_code == 429
    assert response.headers["retry-after"] == "3600"
    assert response.json()["detail"].startswith("Too many accounts were created")
    with TestClient(client.app, client=("203.0.113.60", 4321)) as elsewhere:
        assert _register(elsewhere, "cyd").status_code == 201


def test_looking_people_up_is_limited_like_search(client, monkeypatch):
    ada, _bob = ada_and_bob(client)
    monkeypatch.setattr(get_settings(), "searches_per_minute", 2)
    for _ in range(2):
        assert client.get("/api/users/bob", headers=ada).status_code == 200

    response = client.get("/api/users/bob", headers=ada)

    assert response.status_code == 429
    assert 0 < int(response.headers["retry-after"]) <= 60
