"""Two-step sign-in and the devices list in Settings, and the login form's second step,
through the Reflex states' event handlers (no browser), on both databases.

Codes are computed with pyotp from the secret the page shows, as the person's app would.
The clock is frozen at the real time and moved a step on where a second code is needed
(a code is accepted once).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pyotp
import pytest
from sqlmodel import select

from iris_reflex import clock
from iris_reflex.live import outbox, push
from iris_reflex.live.events import Event
from iris_reflex.models import TotpSecret
from iris_reflex.paths import SESSION_COOKIE
from iris_reflex.services import auth, two_factor
from iris_reflex.state.auth_forms import AuthFormState
from iris_reflex.state.security import SecurityState
from iris_reflex.state.session import SessionState
from iris_reflex.state.tabs import ReflexTabs
from tests.state.conftest import make_state
from tests.state.test_settings_state import (  # noqa: F401 (fixtures used by name)
    PASSWORD,
    Person,
    _chat_tab,
    _ConnectedTabs,
    _device,
    _live_sessions,
    _person,
    _redirects_to_login,
    _run_spawned,
    _toast,
    fast_argon2,
    fresh_registry,
    run,
)


@pytest.fixture
def spawned() -> Iterator[list[tuple[Event, str | None]]]:
    """What the handlers' actions publish after a commit, kept for the test to deliver."""
    with outbox.record() as kept:
        yield kept


@pytest.fixture
def now(frozen_clock):
    frozen_clock.current = datetime.now(UTC).replace(microsecond=0)
    return frozen_clock


def _security_tab(person: Person) -> Any:
    """A tab on /settings after its on_load (require_user, then this section's load)."""
    tab = make_state(SecurityState, cookie=person.cookie, pathname="/settings")

    async def on_load() -> None:
        assert await (await tab.get_state(SessionState)).require_user() is None
        assert await tab.load() is None

    run(on_load())
    return tab


def _code(secret: str) -> str:
    return pyotp.TOTP(secret).at(clock.now())


def _enrol(tab: Any, now) -> tuple[str, list[str]]:
    run(tab.start_enrolment())
    secret = tab.enrol_secret
    run(tab.confirm_enrolment({"totp_code": _code(secret)}))
    codes = list(tab.new_codes)
    run(tab.done_with_codes())
    now.advance(seconds=30)
    return secret, codes


def _public(state: Any) -> str:
    """Everything of the tab's state tree that the browser can be sent."""
    return json.dumps(state.parent_state.dict(), default=str)


# ------------------------------------------------------------------------------ enrolment


def test_enrolment_shows_the_secret_then_only_the_codes_once(app_db, session, now):
    ada = _person(session, "Ada")
    tab = _security_tab(ada)
    assert (tab.two_step_on, tab.enrolling) == (False, False)

    run(tab.start_enrolment())
    secret = tab.enrol_secret
    assert tab.enrolling and len(secret) == 32
    assert tab.enrol_qr.startswith("data:image/svg+xml")

    wrong = pyotp.TOTP(secret).at(clock.now().timestamp() + 300)
    run(tab.confirm_enrolment({"totp_code": wrong}))
    assert tab.security_error == two_factor.WRONG_CODE and tab.two_step_on is False

    result = run(tab.confirm_enrolment({"totp_code": _code(secret)}))
    assert "__toast" in _toast(result)
    assert tab.two_step_on and tab.recovery_left == 10
    assert len(tab.new_codes) == 10
    assert tab.enrol_secret == "" and tab.enrol_qr == "" and not tab.enrolling
    assert secret not in _public(tab)

    run(tab.done_with_codes())
    assert tab.new_codes == []


def test_leaving_the_page_forgets_the_secret_and_the_unfinished_setup(app_db, session, now):
    ada = _person(session, "Ada")
    tab = _security_tab(ada)
    run(tab.start_enrolment())
    secret = tab.enrol_secret
    run(tab.leave())
    assert tab.enrol_secret == "" and tab.enrol_qr == "" and not tab.enrolling
    assert secret not in _public(tab)
    session.rollback()
    assert session.exec(select(TotpSecret)).all() == []


def test_turning_off_needs_the_password_or_a_code(app_db, session, now):
    ada = _person(session, "Ada")
    tab = _security_tab(ada)
    secret, _ = _enrol(tab, now)
    run(tab.open_manage("off"))
    assert tab.manage == "off"
    run(tab.turn_off({"off_password": "not my password", "off_code": ""}))
    assert tab.security_error == "That password or code is not correct."
    assert tab.two_step_on
    run(tab.turn_off({"off_password": "", "off_code": _code(secret)}))
    assert tab.two_step_on is False and tab.manage == ""


def test_new_recovery_codes_are_shown_once_and_the_old_ones_stop_working(app_db, session, now):
    ada = _person(session, "Ada")
    tab = _security_tab(ada)
    _, old = _enrol(tab, now)
    run(tab.open_manage("regenerate"))
    run(tab.regenerate_codes({"off_password": PASSWORD, "off_code": ""}))
    assert len(tab.new_codes) == 10 and not set(tab.new_codes) & set(old)
    session.rollback()
    assert not two_factor.consume_code(session, user_id=ada.id, code=old[0], now=clock.now())


def test_a_tab_without_a_valid_session_is_sent_to_login_and_changes_nothing(app_db, session, now):
    ada = _person(session, "Ada")
    other = _device(session, ada)
    tab = make_state(SecurityState, cookie=f"{SESSION_COOKIE}=forged", pathname="/settings")
    assert _redirects_to_login(run(tab.load()))
    assert _redirects_to_login(run(tab.start_enrolment()))
    assert tab.enrol_secret == ""
    handle = auth.device_handle(other.session_id)
    assert _redirects_to_login(run(tab.sign_out_device(handle)))
    assert _redirects_to_login(run(tab.turn_off({"off_password": PASSWORD})))
    assert _live_sessions(session, ada.id) == {ada.session_id, other.session_id}
    session.rollback()
    assert session.exec(select(TotpSecret)).all() == []


# ------------------------------------------------------------------------------- devices


def test_devices_list_marks_this_one_and_signs_another_out_with_its_tabs(
    app_db, session, now, spawned
):
    ada = _person(session, "Ada")
    phone = _device(session, ada)
    here = _security_tab(ada)
    phone_tab, phone_chat = _chat_tab(phone)
    app = _ConnectedTabs(here, phone_tab)
    push.install(ReflexTabs(app))

    assert [d.current for d in here.devices] == [True, False]
    assert phone.session_id not in _public(here)
    result = run(here.sign_out_device(here.devices[1].handle))

    assert "__toast" in _toast(result)
    assert _live_sessions(session, ada.id) == {ada.session_id}
    assert [d.current for d in here.devices] == [True]
    _run_spawned(spawned)
    assert app.sent_to_login(phone_tab) and not app.sent_to_login(here)
    assert phone_chat.conversations == [] and phone_chat._user_id is None


def test_signing_out_this_device_from_the_list_is_signing_out(app_db, session, now, spawned):
    ada = _person(session, "Ada")
    here = _security_tab(ada)
    assert run(here.sign_out_device(here.devices[0].handle)) is SessionState.log_out
    assert _live_sessions(session, ada.id) == set()


def test_someone_elses_session_cannot_be_signed_out(app_db, session, now, spawned):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    here = _security_tab(ada)
    result = run(here.sign_out_device(auth.device_handle(bob.session_id)))
    assert auth.NO_SUCH_DEVICE in _toast(result)
    assert _live_sessions(session, bob.id) == {bob.session_id}


# ------------------------------------------------------------------- login, second step


def _login_form() -> Any:
    return make_state(AuthFormState, pathname="/login", ip="198.51.100.23")


def test_the_login_form_asks_for_the_code_then_signs_in(app_db, session, now):
    ada = _person(session, "Ada")
    secret, codes = _enrol(_security_tab(ada), now)
    form = _login_form()
    before = _live_sessions(session, ada.id)

    assert run(form.log_in({"username": "ada", "password": PASSWORD})) is None
    assert form.second_step and form.error == ""
    assert form._challenge and form._challenge not in _public(form)
    assert _live_sessions(session, ada.id) == before  # no session yet

    run(form.verify_code({"code": "000000"}))
    assert form.error == auth.WRONG_CODE and form.second_step

    result = run(form.verify_code({"code": _code(secret)}))
    assert result is not None and form.busy and form._challenge == ""
    assert len(_live_sessions(session, ada.id)) == len(before) + 1


def test_back_from_the_second_step_drops_the_challenge(app_db, session, now):
    ada = _person(session, "Ada")
    _, codes = _enrol(_security_tab(ada), now)
    form = _login_form()
    run(form.log_in({"username": "ada", "password": PASSWORD}))
    form.back_to_password()
    assert form.second_step is False and form._challenge == ""
    run(form.verify_code({"code": codes[0]}))
    assert form.error == auth.CHALLENGE_ENDED and form.second_step is False


def test_a_wrong_password_never_reaches_the_second_step(app_db, session, now):
    ada = _person(session, "Ada")
    _enrol(_security_tab(ada), now)
    form = _login_form()
    run(form.log_in({"username": "ada", "password": "wrong password"}))
    assert form.second_step is False and form.error == auth.WRONG_CREDENTIALS
