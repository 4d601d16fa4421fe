"""Passkeys over the JSON API: add one (bearer or cookie from our origin), sign in with it
alone, pass the second step with it, and the refusals (a replayed answer, a deleted
passkey, a foreign origin, a wrong password). Answers come from the software authenticator
of the service tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from iris_reflex.paths import SESSION_COOKIE
from iris_reflex.services import passkeys
from iris_reflex.settings import get_settings
from tests.api.test_api_openapi import (
    PASSWORD,
    bearer,
    client_fixture,  # noqa: F401 (the ``client`` fixture)
    parse_utc,
    sign_up,
)
from tests.api.test_api_two_factor import me_id, turn_on
from tests.services.authenticator import Authenticator

OWN_PAGE = {"Origin": get_settings().origins()[0]}


@pytest.fixture
def now(frozen_clock):
    """The app clock at the real time (PyJWT checks ``iat`` against it)."""
    frozen_clock.current = datetime.now(UTC).replace(microsecond=0)
    return frozen_clock


@pytest.fixture
def device() -> Authenticator:
    return Authenticator(origin=passkeys.relying_party().origins[0])


def add(client: TestClient, headers: dict[str, str], device: Authenticator, name: str = "Key"):
    options = client.post("/api/passkeys/options", json={"password": PASSWORD}, headers=headers)
    assert options.status_code == 200, options.text
    answer = device.create(options.json()["public_key"])
    created = client.post(
        "/api/passkeys", json={"name": name, "credential": answer}, headers=headers
    )
    assert created.status_code == 201, created.text
    return created.json()


def passkey_login(client: TestClient, device: Authenticator):
    options = client.post("/api/auth/passkey/options")
    assert options.status_code == 200, options.text
    answer = device.get(options.json()["public_key"])
    return client.post("/api/auth/passkey/login", json={"credential": answer}), answer


def test_add_a_passkey_then_sign_in_with_it_alone(client, now, device):
    ada = sign_up(client, "ada")
    created = add(client, ada, device, "Laptop")
    assert set(created) == {"id", "name", "created_at", "last_used_at"}
    assert created["name"] == "Laptop" and created["last_used_at"] is None

    response, _ = passkey_login(client, device)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert client.get("/api/me", headers=bearer(token)).json()["username"] == "ada"
    listed = client.get("/api/passkeys", headers=ada).json()
    assert [p["name"] for p in listed] == ["Laptop"]
    assert parse_utc(listed[0]["last_used_at"]) == now.current


def test_a_replayed_sign_in_answer_is_refused(client, now, device):
    add(client, sign_up(client, "ada"), device)
    first, answer = passkey_login(client, device)
    assert first.status_code == 200
    again = client.post("/api/auth/passkey/login", json={"credential": answer})
    assert again.status_code == 401
    assert again.json()["detail"] == passkeys.REFUSED


def test_adding_needs_the_password(client, now):
    ada = sign_up(client, "ada")
    refused = client.post("/api/passkeys/options", json={"password": "wrong"}, headers=ada)
    assert refused.status_code == 422
    assert client.post("/api/passkeys/options", json={}, headers=ada).status_code == 422
    assert client.post("/api/passkeys/options", json={"password": PASSWORD}).status_code == 401


def test_rename_and_delete_with_the_password_then_it_no_longer_signs_in(client, now, device):
    ada = sign_up(client, "ada")
    created = add(client, ada, device)
    url = f"/api/passkeys/{created['id']}"
    renamed = client.patch(url, json={"name": "Phone"}, headers=ada)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Phone"
    bob = sign_up(client, "bob")
    assert client.patch(url, json={"name": "Mine"}, headers=bob).status_code == 404
    assert client.request("DELETE", url, json={"password": PASSWORD}, headers=bob).status_code == (
        404
    )
    assert client.request("DELETE", url, json={"password": "no"}, headers=ada).status_code == 422
    assert client.request("DELETE", url, json={"password": PASSWORD}, headers=ada).status_code == (
        204
    )
    assert client.get("/api/passkeys", headers=ada).json() == []
    response, _ = passkey_login(client, device)
    assert response.status_code == 401


def test_the_second_step_passes_with_a_passkey(client, database_url, now, device):
    ada = sign_up(client, "ada")
    add(client, ada, device)
    turn_on(database_url, me_id(client, ada), now)
    step = client.post("/api/auth/login", json={"username": "ada", "password": PASSWORD})
    assert step.status_code == 202
    assert step.json()["methods"] == ["totp", "recovery_code", "passkey"]
    token = step.json()["second_factor_token"]
    options = client.post(
        "/api/auth/login/second-factor/passkey/options", json={"second_factor_token": token}
    )
    assert options.status_code == 200, options.text
    answer = device.get(options.json()["public_key"])
    done = client.post(
        "/api/auth/login/second-factor/passkey",
        json={"second_factor_token": token, "credential": answer},
    )
    assert done.status_code == 200, done.text
    assert client.get("/api/me", headers=bearer(done.json()["access_token"])).status_code == 200
    replay = client.post(
        "/api/auth/login/second-factor/passkey",
        json={"second_factor_token": token, "credential": answer},
    )
    assert replay.status_code == 401


def cookie_client(client: TestClient) -> TestClient:
    token = client.post("/api/auth/login", json={"username": "ada", "password": PASSWORD}).json()
    client.cookies.set(SESSION_COOKIE, token["access_token"])
    return client


@pytest.mark.parametrize("origin", ["http://localhost:4000", None])
def test_cookie_writes_from_a_foreign_or_missing_origin_are_refused(client, now, origin):
    sign_up(client, "ada")
    browser = cookie_client(client)
    headers = {"Origin": origin} if origin else {}
    refused = browser.post("/api/passkeys/options", json={"password": PASSWORD}, headers=headers)
    assert refused.status_code == 403
    assert browser.get("/api/passkeys").status_code == 200  # reading is not a write


def test_cookie_writes_from_our_own_pages_work(client, now, device):
    sign_up(client, "ada")
    browser = cookie_client(client)
    options = browser.post("/api/passkeys/options", json={"password": PASSWORD}, headers=OWN_PAGE)
    assert options.status_code == 200
    answer = device.create(options.json()["public_key"])
    created = browser.post(
        "/api/passkeys", json={"name": "Key", "credential": answer}, headers=OWN_PAGE
    )
    assert created.status_code == 201


def test_an_answer_from_another_origin_is_refused(client, now, device):
    add(client, sign_up(client, "ada"), device)
    options = client.post("/api/auth/passkey/options").json()["public_key"]
    answer = device.get(options, origin="http://localhost:4000")
    response = client.post(
        "/api/auth/passkey/login", json={"credential": answer}, headers={"Origin": device.origin}
    )
    assert response.status_code == 401


def test_sign_in_options_are_limited_per_address(client, now, monkeypatch):
    monkeypatch.setattr(get_settings(), "passkey_challenges_per_minute", 1)
    assert client.post("/api/auth/passkey/options").status_code == 200
    refused = client.post("/api/auth/passkey/options")
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 60
