"""SessionState and AuthFormState through their event handlers, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from reflex.istate.data import RouterData
from sqlmodel import func, select

from iris_reflex.errors import NotAuthenticated
from iris_reflex.models import User
from iris_reflex.paths import SESSION_COOKIE
from iris_reflex.services import auth, users
from iris_reflex.settings import get_settings
from iris_reflex.state.auth_forms import AuthFormState
from iris_reflex.state.session import SessionState, tab_address
from tests.state.conftest import action_args, action_name, make_state

PASSWORD = "correct horse battery"


def _signed_in_cookie(session, username: str = "Ada") -> tuple[str, auth.SignedIn]:
    users.check_register(session, username=username, password=PASSWORD, ip="192.0.2.1")
    signed = auth.login(session, username=username, password=PASSWORD, ip="198.51.100.1")
    return f"{SESSION_COOKIE}={signed.token}; theme=dark", signed


def test_protected_page_without_cookie_redirects_to_login(app_db):
    state = make_state(SessionState)
    result = asyncio.run(state.require_user())
    assert action_name(result) == "_redirect"
    assert action_args(result)["path"] == "/login"
    assert state.signed_in is False


def test_protected_page_with_tampered_cookie_redirects_to_login(app_db, session):
    cookie, _ = _signed_in_cookie(session)
    tampered = cookie.replace(f"{SESSION_COOKIE}=", f"{SESSION_COOKIE}=x", 1)
    state = make_state(SessionState, cookie=tampered)
    result = asyncio.run(state.require_user())
    assert action_args(result)["path"] == "/login"
    assert state.username == ""


def test_valid_cookie_shows_user_and_keeps_id_server_side(app_db, session):
    cookie, signed = _signed_in_cookie(session)
    state = make_state(SessionState, cookie=cookie)
    assert asyncio.run(state.require_user()) is None
    assert state.signed_in is True
    assert state.username == "Ada"
    assert state._user_id == signed.user.id
    sent_to_browser = state.dict()[state.get_full_name()]
    assert not any("user_id" in key or "session_id" in key for key in sent_to_browser)


def test_logged_out_session_is_refused_on_next_event(app_db, session):
    cookie, signed = _signed_in_cookie(session)
    state = make_state(SessionState, cookie=cookie)
    asyncio.run(state.require_user())
    result = asyncio.run(state.log_out())
    assert action_name(result) == "_call_script"
    assert state.signed_in is False
    with pytest.raises(NotAuthenticated):
        auth.authenticate(session, signed.token)
    other_tab = make_state(SessionState, cookie=cookie)
    assert action_args(asyncio.run(other_tab.require_user()))["path"] == "/login"


def test_login_page_sends_signed_in_user_home(app_db, session):
    cookie, _ = _signed_in_cookie(session)
    state = make_state(SessionState, cookie=cookie)
    assert action_args(asyncio.run(state.redirect_if_signed_in()))["path"] == "/"
    anonymous = make_state(SessionState)
    assert asyncio.run(anonymous.redirect_if_signed_in()) is None


def test_login_with_wrong_password_shows_error_and_opens_no_session(app_db, session):
    users.check_register(session, username="Ada", password=PASSWORD, ip="192.0.2.1")
    form = make_state(AuthFormState)
    result = asyncio.run(form.log_in({"username": "ada", "password": "wrong password"}))
    assert result is None
    assert form.error == auth.WRONG_CREDENTIALS
    assert form.busy is False


def test_login_hands_off_to_cookie_without_exposing_session_token(app_db, session):
    users.check_register(session, username="Ada", password=PASSWORD, ip="192.0.2.1")
    form = make_state(AuthFormState)
    result = asyncio.run(form.log_in({"username": "ADA", "password": PASSWORD}))
    assert action_name(result) == "_call_script"
    script = action_args(result)["javascript_code"]
    assert "/api/auth/web/session" in script
    assert form.error == ""
    assert form.busy is True
    handoff = script.split('handoff: "', 1)[1].split('"', 1)[0]
    with pytest.raises(NotAuthenticated):
        auth.authenticate(session, handoff)  # the page's token is no session token
    token, _ = auth.redeem_handoff(session, handoff)
    assert auth.authenticate(session, token).user_id is not None


def test_register_refuses_taken_username_in_other_case(app_db, session):
    users.check_register(session, username="Ada", password=PASSWORD, ip="192.0.2.1")
    form = make_state(AuthFormState)
    result = asyncio.run(
        form.register({"username": "aDA", "password": PASSWORD, "confirm": PASSWORD})
    )
    assert result is None
    assert form.error == "That username is taken."
    assert session.exec(select(func.count()).select_from(User)).one() == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"username": "Bob", "password": "short", "confirm": "short"}, "at least 8"),
        ({"username": "Bob", "password": PASSWORD, "confirm": PASSWORD + "!"}, "do not match"),
        ({"username": "b", "password": PASSWORD, "confirm": PASSWORD}, "3 to 32"),
        ({"username": "<b>bob</b>", "password": PASSWORD, "confirm": PASSWORD}, "3 to 32"),
    ],
)
def test_register_refuses_bad_input_and_writes_nothing(app_db, session, fields, message):
    form = make_state(AuthFormState)
    assert asyncio.run(form.register(fields)) is None
    assert message in form.error
    assert session.exec(select(func.count()).select_from(User)).one() == 0


def test_register_signs_the_new_user_in(app_db, session):
    form = make_state(AuthFormState)
    result = asyncio.run(
        form.register({"username": "Grace.H", "password": PASSWORD, "confirm": PASSWORD})
    )
    assert action_name(result) == "_call_script"
    assert users.get_by_username(session, "grace.h").username == "Grace.H"


def test_the_tab_address_believes_forwarded_for_only_from_a_trusted_proxy(monkeypatch):
    router = RouterData.from_router_data(
        {"headers": {"asgi-scope-client": "10.0.0.1", "x-forwarded-for": "192.0.2.7"}}
    )
    assert tab_address(router) == "10.0.0.1"
    monkeypatch.setattr(get_settings(), "trusted_proxies", "10.0.0.0/8")
    assert tab_address(router) == "192.0.2.7"


def test_the_register_form_shows_the_registration_limit(app_db, session, monkeypatch):
    monkeypatch.setattr(get_settings(), "registrations_per_hour", 1)
    form = make_state(AuthFormState)
    fields = {"password": PASSWORD, "confirm": PASSWORD}
    assert action_name(asyncio.run(form.register({"username": "Grace", **fields}))) == (
        "_call_script"
    )

    second = make_state(AuthFormState)
    assert asyncio.run(second.register({"username": "Alan", **fields})) is None
    assert second.error.startswith("Too many accounts were created from your network")
    assert users.get_by_username(session, "alan") is None
