"""Two-step sign-in and the devices list over the JSON API.

Two-step sign-in is turned on through the service (the settings page is its only UI); the
codes are computed with pyotp from the secret, as an authenticator app would.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from iris_reflex import clock
from iris_reflex.db import engine_for
from iris_reflex.services import two_factor
from tests.api.test_api_openapi import (
    PASSWORD,
    bearer,
    client_fixture,  # noqa: F401 (the ``client`` fixture)
    login,
    parse_utc,
    sign_up,
)

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


@pytest.fixture
def now(frozen_clock):
    """The app clock at the real time (PyJWT checks ``iat`` against it)."""
    frozen_clock.current = datetime.now(UTC).replace(microsecond=0)
    return frozen_clock


def turn_on(database_url: str, user_id: int, now) -> str:
    """Two-step sign-in on for ``user_id``; its secret. The clock then moves a step on."""
    with Session(engine_for(database_url), expire_on_commit=False) as db:
        secret = two_factor.begin_enrolment(db, actor_id=user_id).secret
        two_factor.confirm_enrolment(db, actor_id=user_id, code=pyotp.TOTP(secret).at(now.current))
    now.advance(seconds=30)
    return secret


def me_id(client: TestClient, headers: dict[str, str]) -> int:
    return int(client.get("/api/me", headers=headers).json()["id"])


def test_login_with_two_step_on_answers_202_with_a_token_and_no_session(client, database_url, now):
    ada = sign_up(client, "ada")
    secret = turn_on(database_url, me_id(client, ada), now)
    response = client.post("/api/auth/login", json={"username": "ada", "password": PASSWORD})
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"second_factor_required", "second_factor_token", "expires_in", "methods"}
    assert body["second_factor_required"] is True and body["expires_in"] == 300
    assert body["methods"] == ["totp", "recovery_code"]
    # The token is no bearer token.
    assert client.get("/api/me", headers=bearer(body["second_factor_token"])).status_code == 401
    assert len(client.get("/api/sessions", headers=ada).json()) == 1

    finished = client.post(
        "/api/auth/login/second-factor",
        json={
            "second_factor_token": body["second_factor_token"],
            "code": pyotp.TOTP(secret).at(clock.now()),
        },
        headers={"User-Agent": FIREFOX},
    )
    assert finished.status_code == 200, finished.text
    token = finished.json()["access_token"]
    assert client.get("/api/me", headers=bearer(token)).json()["username"] == "ada"
    # Single use.
    again = client.post(
        "/api/auth/login/second-factor",
        json={"second_factor_token": body["second_factor_token"], "code": "123456"},
    )
    assert again.status_code == 401


def test_a_wrong_code_is_401_and_repeated_wrong_codes_are_429(client, database_url, now):
    ada = sign_up(client, "ada")
    turn_on(database_url, me_id(client, ada), now)
    token = client.post("/api/auth/login", json={"username": "ada", "password": PASSWORD}).json()[
        "second_factor_token"
    ]
    statuses = []
    for _ in range(4):
        response = client.post(
            "/api/auth/login/second-factor",
            json={"second_factor_token": token, "code": "000000"},
        )
        statuses.append(response.status_code)
    assert statuses[:2] == [401, 401]
    assert statuses[-1] == 429
    assert int(response.headers["Retry-After"]) >= 1


@pytest.mark.parametrize(
    "payload",
    [{}, {"second_factor_token": "x"}, {"code": "123456"}, {"second_factor_token": 1, "code": 2}],
)
def test_the_second_step_refuses_a_malformed_body(client, payload):
    response = client.post("/api/auth/login/second-factor", json=payload)
    assert response.status_code == 422


def test_login_without_two_step_still_answers_200(client):
    sign_up(client, "bob")
    assert login(client, "bob")


def test_sessions_lists_the_callers_devices_and_marks_this_one(client, now):
    ada = sign_up(client, "ada")
    other = client.post(
        "/api/auth/login",
        json={"username": "ada", "password": PASSWORD},
        headers={"User-Agent": FIREFOX},
    )
    listed = client.get("/api/sessions", headers=ada)
    assert listed.status_code == 200
    rows = listed.json()
    assert [r["current"] for r in rows] == [True, False]
    assert rows[1]["device"] == "Firefox on Linux"
    assert set(rows[0]) == {"id", "device", "created_at", "last_active_at", "current"}
    parse_utc(rows[1]["created_at"])
    # The id is not the session id the token carries.
    assert rows[1]["id"] not in other.json()["access_token"]


def test_deleting_a_session_signs_that_device_out_only(client):
    ada = sign_up(client, "ada")
    other = bearer(login(client, "ada"))
    handle = client.get("/api/sessions", headers=ada).json()[1]["id"]
    assert client.delete(f"/api/sessions/{handle}", headers=ada).status_code == 204
    assert client.get("/api/me", headers=other).status_code == 401
    assert client.get("/api/me", headers=ada).status_code == 200
    assert client.delete(f"/api/sessions/{handle}", headers=ada).status_code == 404


def test_nobody_deletes_someone_elses_session(client):
    ada, bob = sign_up(client, "ada"), sign_up(client, "bob")
    bobs = client.get("/api/sessions", headers=bob).json()[0]["id"]
    assert client.delete(f"/api/sessions/{bobs}", headers=ada).status_code == 404
    assert client.get("/api/me", headers=bob).status_code == 200


def test_sessions_need_a_token(client):
    assert client.get("/api/sessions").status_code == 401
    assert client.delete("/api/sessions/abc").status_code == 401
