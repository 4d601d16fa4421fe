"""The cookie endpoints that turn a login handoff into an HttpOnly session cookie."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from iris_reflex.api.app import create_api
from iris_reflex.errors import NotAuthenticated
from iris_reflex.paths import SESSION_COOKIE
from iris_reflex.services import auth, users
from iris_reflex.settings import get_settings

PASSWORD = "correct horse battery"
# What this deployment's own pages send (the first default origin, http://localhost:3000).
OWN_PAGE = {"Origin": get_settings().origins()[0]}
FOREIGN_ORIGINS = [
    "http://localhost:4000",  # same site, another port: SameSite=Strict still sends the cookie
    "http://evil.localhost:3000",
    "https://localhost:3000",
    "null",
]


@pytest.fixture
def client(database_url: str, session, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(get_settings(), "database_url", database_url)
    with TestClient(create_api(), base_url="http://testserver") as test_client:
        yield test_client


def _handoff(session) -> tuple[str, auth.SignedIn]:
    users.check_register(session, username="Ada", password=PASSWORD, ip="192.0.2.1")
    signed = auth.login(session, username="Ada", password=PASSWORD, ip="198.51.100.1")
    identity = auth.Identity(user_id=signed.user.id, session_id=signed.session_id)
    return auth.issue_handoff(identity), signed


def test_handoff_sets_httponly_strict_session_cookie(client, session):
    handoff, signed = _handoff(session)
    response = client.post("/api/auth/web/session", json={"handoff": handoff}, headers=OWN_PAGE)
    assert response.status_code == 204
    header = response.headers["set-cookie"]
    assert header.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in header
    assert "SameSite=strict" in header
    token = response.cookies[SESSION_COOKIE]
    assert auth.authenticate(session, token).session_id == signed.session_id


def test_a_handoff_trades_for_a_cookie_only_once(client, session):
    handoff, _ = _handoff(session)
    first = client.post("/api/auth/web/session", json={"handoff": handoff}, headers=OWN_PAGE)
    assert first.status_code == 204
    for _ in range(2):
        again = client.post("/api/auth/web/session", json={"handoff": handoff}, headers=OWN_PAGE)
        assert again.status_code == 401
        assert "set-cookie" not in again.headers


@pytest.mark.parametrize("bad", ["", "not-a-token", "a.b.c"])
def test_bad_handoff_is_refused_with_json_error(client, bad):
    response = client.post("/api/auth/web/session", json={"handoff": bad}, headers=OWN_PAGE)
    assert response.status_code in (401, 422)
    assert "detail" in response.json()
    assert "set-cookie" not in response.headers


def test_session_token_cannot_be_used_as_handoff(client, session):
    _, signed = _handoff(session)
    response = client.post(
        "/api/auth/web/session", json={"handoff": signed.token}, headers=OWN_PAGE
    )
    assert response.status_code == 401
    assert response.json() == {"detail": auth.SESSION_ENDED}


def test_handoff_of_revoked_session_is_refused(client, session):
    handoff, signed = _handoff(session)
    auth.logout(session, auth.Identity(user_id=signed.user.id, session_id=signed.session_id))
    assert (
        client.post(
            "/api/auth/web/session", json={"handoff": handoff}, headers=OWN_PAGE
        ).status_code
        == 401
    )


def test_web_logout_revokes_session_and_clears_cookie(client, session):
    handoff, signed = _handoff(session)
    client.post("/api/auth/web/session", json={"handoff": handoff}, headers=OWN_PAGE)
    response = client.post("/api/auth/web/logout", headers=OWN_PAGE)
    assert response.status_code == 204
    assert f'{SESSION_COOKIE}=""' in response.headers["set-cookie"]
    with pytest.raises(NotAuthenticated):
        auth.authenticate(session, signed.token)


def test_web_logout_without_cookie_is_harmless(client):
    assert client.post("/api/auth/web/logout", headers=OWN_PAGE).status_code == 204


def test_health_answers(client):
    assert client.get("/api/health").json() == {"status": "ok"}


# --- one origin only -------------------------------------------------------------------------


@pytest.mark.parametrize("origin", [*FOREIGN_ORIGINS, None])
def test_handoff_trade_from_a_foreign_or_missing_origin_is_refused(client, session, origin):
    """Login CSRF: a foreign page must not plant its own session in the victim's browser."""
    handoff, _ = _handoff(session)
    headers = {"Origin": origin} if origin is not None else {}
    response = client.post("/api/auth/web/session", json={"handoff": handoff}, headers=headers)
    assert response.status_code == 403
    assert response.json() == {"detail": "Cross-site request refused."}
    assert "set-cookie" not in response.headers
    # The refusal did not spend the handoff: our own page can still trade it.
    own = client.post("/api/auth/web/session", json={"handoff": handoff}, headers=OWN_PAGE)
    assert own.status_code == 204


@pytest.mark.parametrize("origin", [*FOREIGN_ORIGINS, None])
def test_cookie_logout_from_a_foreign_or_missing_origin_is_refused(client, session, origin):
    """Logout CSRF: the session survives and the cookie is not cleared."""
    handoff, signed = _handoff(session)
    client.post("/api/auth/web/session", json={"handoff": handoff}, headers=OWN_PAGE)
    headers = {"Origin": origin} if origin is not None else {}
    response = client.post("/api/auth/web/logout", headers=headers)
    assert response.status_code == 403
    assert "set-cookie" not in response.headers
    assert auth.authenticate(session, signed.token).session_id == signed.session_id


def test_allowed_origins_come_from_the_setting(client, session, monkeypatch):
    monkeypatch.setattr(get_settings(), "allowed_origins", "https://chat.example, http://x:81/")
    assert get_settings().origins() == ("https://chat.example", "http://x:81")
    handoff, _ = _handoff(session)
    refused = client.post("/api/auth/web/session", json={"handoff": handoff}, headers=OWN_PAGE)
    assert refused.status_code == 403
    response = client.post(
        "/api/auth/web/session",
        json={"handoff": handoff},
        headers={"Origin": "https://CHAT.example:443"},
    )
    assert response.status_code == 204
