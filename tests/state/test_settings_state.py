"""SettingsState through its event handlers, driven directly (no browser), on both databases.

Each ``_tab`` is one browser tab (its own state tree and client token) sending a session
cookie. The user is always the one the cookie proves: no handler takes an id. The events a
handler's actions publish (telling friends, signing other tabs out) are recorded and fanned
out by the test against stand-in connected tabs, so what reaches another tab is checked, not
assumed.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine, Iterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from passlib.context import CryptContext
from sqlmodel import Session, select

from iris_reflex.db import session_scope
from iris_reflex.errors import NotAuthenticated
from iris_reflex.live import fanout, outbox, push
from iris_reflex.live.events import Event, ReceiptsChanged
from iris_reflex.live.registry import get_registry
from iris_reflex.models import User, UserSession
from iris_reflex.paths import SESSION_COOKIE
from iris_reflex.services import auth, avatars, friend_requests, passwords, storage, users
from iris_reflex.settings import get_settings
from iris_reflex.state.session import SessionState
from iris_reflex.state.settings import SettingsState
from iris_reflex.state.tabs import ReflexTabs
from tests import media_samples
from tests.state.conftest import Tab, action_args, action_name, make_state

PASSWORD = "correct horse battery"
NEW_PASSWORD = "purple monkey dishwasher"

pytestmark = [
    pytest.mark.filterwarnings("error::RuntimeWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
]


@dataclasses.dataclass(frozen=True)
class Person:
    id: int
    username: str
    cookie: str
    session_id: str


def _cookie_for(session: Session, username: str) -> tuple[str, str]:
    signed = auth.login(session, username=username, password=PASSWORD, ip="198.51.100.1")
    return f"{SESSION_COOKIE}={signed.token}", signed.session_id


def _person(session: Session, username: str) -> Person:
    user = users.check_register(session, username=username, password=PASSWORD, ip="192.0.2.1")
    assert user.id is not None
    cookie, session_id = _cookie_for(session, username)
    return Person(user.id, user.username, cookie, session_id)


def _device(session: Session, person: Person) -> Person:
    """The same person signed in on another device (another session)."""
    cookie, session_id = _cookie_for(session, person.username)
    return dataclasses.replace(person, cookie=cookie, session_id=session_id)


def _tab(cookie: str = "") -> Any:
    """A new tab on /settings sending this cookie header."""
    return make_state(SettingsState, cookie=cookie, pathname="/settings")


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def _settings_tab(person: Person) -> Any:
    """A tab on /settings after its on_load (require_user, then load)."""
    tab = _tab(person.cookie)

    async def on_load() -> None:
        session_state = await tab.get_state(SessionState)
        assert await session_state.require_user() is None
        assert await tab.load() is None

    run(on_load())
    return tab


def _chat_tab(person: Person) -> Any:
    """A tab on the home page after its on_load (the tab, and the same tab's chat view)."""
    tab = Tab(person.cookie)

    async def on_load() -> None:
        assert await tab.session.require_user() is None
        await tab.load()

    run(on_load())
    return tab, tab


def _redirects_to_login(spec: Any) -> bool:
    return (
        spec is not None
        and not isinstance(spec, list)
        and action_name(spec) == "_redirect"
        and action_args(spec)["path"] == "/login"
    )


def _toast(spec: Any) -> str:
    js = spec.args[0][1]._js_expr
    assert "__toast" in js, js
    return js


def _user(session: Session, user_id: int) -> User | None:
    session.rollback()
    return session.get(User, user_id)


def _live_sessions(session: Session, user_id: int) -> set[str]:
    session.rollback()
    return set(
        session.exec(
            select(UserSession.id).where(
                UserSession.user_id == user_id, UserSession.revoked_at.is_(None)
            )
        ).all()
    )


class _ConnectedTabs:
    """Stands in for the running app: these tabs are connected; emitted events are kept."""

    state_manager = None  # no Redis: nothing held to write back (``ReflexTabs.flush``)

    def __init__(self, *tabs: Any) -> None:
        self.roots = {tab.router.session.client_token: tab.parent_state for tab in tabs}
        self.emitted: dict[str, list[Any]] = {}

        async def is_token_connected(token: str) -> bool:
            return token in self.roots

        async def emit_update(update: Any, token: str) -> None:
            self.emitted.setdefault(token, []).extend(update.events)

        here = SimpleNamespace(instance_id="this-worker")  # a socket on this worker
        self.event_namespace = SimpleNamespace(
            _token_manager=SimpleNamespace(
                is_token_connected=is_token_connected,
                instance_id="this-worker",
                token_to_socket=dict.fromkeys(self.roots, here),
            ),
            emit_update=emit_update,
        )

    @asynccontextmanager
    async def modify_state(self, token: Any):  # type: ignore[no-untyped-def]
        yield self.roots[token.ident]

    def sent_to_login(self, tab: Any) -> bool:
        events = self.emitted.get(tab.router.session.client_token, [])
        return any(e.name == "_redirect" and e.payload.get("path") == "/login" for e in events)


@pytest.fixture(autouse=True)
def fresh_registry() -> Iterator[None]:
    get_registry.cache_clear()
    yield
    get_registry.cache_clear()
    push.install(None)


@pytest.fixture(autouse=True)
def fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real argon2, test-sized."""
    monkeypatch.setattr(
        passwords,
        "_context",
        CryptContext(
            schemes=["argon2"], argon2__memory_cost=1024, argon2__rounds=1, argon2__parallelism=1
        ),
    )


@pytest.fixture
def spawned() -> Iterator[list[tuple[Event, str | None]]]:
    """What the handlers' actions publish after a commit, kept for the test to deliver."""
    with outbox.record() as kept:
        yield kept


def _run_spawned(kept: list[tuple[Event, str | None]]) -> None:
    async def all_of_them() -> None:
        while kept:
            event, skip_token = kept.pop(0)
            await fanout.deliver(event, skip_token)

    run(all_of_them())


# --------------------------------------------------------------------------------- loading


@pytest.mark.parametrize("cookie_kind", ["missing", "tampered", "revoked"])
def test_tab_without_a_valid_session_is_sent_to_login_and_changes_nothing(
    app_db, session, cookie_kind
):
    ada = _person(session, "Ada")
    if cookie_kind == "revoked":
        auth.revoke_sessions(session, user_id=ada.id)
    cookie = {
        "missing": "",
        "tampered": ada.cookie.replace(f"{SESSION_COOKIE}=", f"{SESSION_COOKIE}=x", 1),
        "revoked": ada.cookie,
    }[cookie_kind]
    tab = _tab(cookie)

    assert _redirects_to_login(run(tab.load()))
    assert tab.loaded is False
    assert _redirects_to_login(run(tab.set_theme("dark")))
    assert _redirects_to_login(run(tab.set_timer_choice("3600")))
    assert _redirects_to_login(run(tab.set_timer_choice("custom")))
    assert _redirects_to_login(run(tab.set_custom_timer("2h")))
    assert _redirects_to_login(run(tab.set_delete_open(True)))
    assert _redirects_to_login(
        run(
            tab.change_password(
                {
                    "current_password": PASSWORD,
                    "new_password": NEW_PASSWORD,
                    "confirm_password": NEW_PASSWORD,
                }
            )
        )
    )
    assert _redirects_to_login(run(tab.sign_out_everywhere()))
    assert _redirects_to_login(run(tab.delete_account({"delete_password": PASSWORD})))
    run(tab.load_theme())
    assert tab.theme == ""

    user = _user(session, ada.id)
    assert user is not None
    assert (user.theme, user.default_timer_seconds) == ("system", None)
    assert passwords.verify(PASSWORD, user.password_hash)[0]
    assert run(get_registry().users()) == set()


def test_load_shows_the_users_choices_and_registers_the_tab(app_db, session):
    ada = _person(session, "Ada")
    user = session.get(User, ada.id)
    user.theme, user.read_receipts, user.default_timer_seconds = "dark", False, 3600
    session.add(user)
    session.commit()

    tab = _settings_tab(ada)

    assert (tab.theme, tab.read_receipts, tab.timer_choice, tab.loaded) == (
        "dark",
        False,
        "3600",
        True,
    )
    assert run(get_registry().tokens(ada.id)) == {tab.router.session.client_token}


def test_a_default_timer_outside_the_presets_shows_as_custom(app_db, session):
    ada = _person(session, "Ada")
    user = session.get(User, ada.id)
    user.default_timer_seconds = 90
    session.add(user)
    session.commit()

    tab = _settings_tab(ada)
    assert (tab.timer_choice, tab.custom_timer) == ("custom", "90s")


def test_other_pages_learn_the_theme_from_the_server(app_db, session):
    ada = _person(session, "Ada")
    run(_settings_tab(ada).set_theme("light"))
    other_page = _tab(ada.cookie)
    assert other_page.theme == ""
    run(other_page.load_theme())
    assert other_page.theme == "light"


# ------------------------------------------------------------------------------ preferences


def test_theme_is_remembered_for_the_user(app_db, session):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    tab = _settings_tab(ada)

    assert run(tab.set_theme("dark")) is None
    assert tab.theme == "dark"
    assert _user(session, ada.id).theme == "dark"
    assert _user(session, bob.id).theme == "system"


def test_unknown_theme_is_refused_with_a_toast(app_db, session):
    ada = _person(session, "Ada")
    tab = _settings_tab(ada)
    run(tab.set_theme("dark"))

    assert "light, dark or system" in _toast(run(tab.set_theme("purple")))
    assert tab.theme == "dark"
    assert _user(session, ada.id).theme == "dark"


def test_preset_default_timer_is_saved_at_once(app_db, session):
    ada = _person(session, "Ada")
    tab = _settings_tab(ada)

    assert "1 hour" in _toast(run(tab.set_timer_choice("3600")))
    assert tab.timer_choice == "3600"
    assert _user(session, ada.id).default_timer_seconds == 3600
    assert "without disappearing" in _toast(run(tab.set_timer_choice("0")))
    assert _user(session, ada.id).default_timer_seconds is None


def test_custom_default_timer_waits_for_a_readable_period(app_db, session):
    ada = _person(session, "Ada")
    tab = _settings_tab(ada)
    run(tab.set_timer_choice("3600"))

    assert run(tab.set_timer_choice("custom")) is None
    assert tab.timer_choice == "custom"
    assert _user(session, ada.id).default_timer_seconds == 3600  # nothing saved yet

    run(tab.set_custom_timer("soon"))
    assert "like 90s" in _toast(run(tab.save_custom_timer({})))
    run(tab.set_custom_timer("3s"))
    assert "5 seconds to 365 days" in _toast(run(tab.save_custom_timer({})))
    assert _user(session, ada.id).default_timer_seconds == 3600

    run(tab.set_custom_timer("2h"))
    assert "2h" in _toast(run(tab.save_custom_timer({})))
    assert _user(session, ada.id).default_timer_seconds == 7200


def test_unlisted_timer_choice_from_the_browser_is_refused(app_db, session):
    ada = _person(session, "Ada")
    tab = _settings_tab(ada)
    assert "listed timers" in _toast(run(tab.set_timer_choice("12")))
    assert "listed timers" in _toast(run(tab.set_timer_choice("default")))
    assert _user(session, ada.id).default_timer_seconds is None


def test_read_receipts_switch_is_saved_and_announced(app_db, session, spawned):
    ada = _person(session, "Ada")
    tab = _settings_tab(ada)

    assert run(tab.set_read_receipts(False)) is None
    assert tab.read_receipts is False
    assert _user(session, ada.id).read_receipts is False
    # Friends' open chats, and this user's other tabs, re-read their receipts.
    assert spawned == [(ReceiptsChanged(ada.id), tab.router.session.client_token)]


# ---------------------------------------------------------------------- password, sessions


def test_password_change_signs_other_devices_out_and_sends_their_tabs_to_login(
    app_db, session, monkeypatch, spawned
):
    ada = _person(session, "Ada")
    phone = _device(session, ada)
    here = _settings_tab(ada)
    same_browser, _ = _chat_tab(ada)  # another tab with the same cookie (same session)
    phone_tab, phone_chat = _chat_tab(phone)
    app = _ConnectedTabs(here, same_browser, phone_tab)
    push.install(ReflexTabs(app))

    result = run(
        here.change_password(
            {
                "current_password": PASSWORD,
                "new_password": NEW_PASSWORD,
                "confirm_password": NEW_PASSWORD,
            }
        )
    )

    assert here.change_error == ""
    assert "Signed out of 1 other session." in _toast(result[-1])
    assert [action_name(spec) for spec in result[:-1]] == ["_set_value"] * 3
    assert _live_sessions(session, ada.id) == {ada.session_id}
    _run_spawned(spawned)
    assert app.sent_to_login(phone_tab)
    assert not app.sent_to_login(same_browser) and not app.sent_to_login(here)

    async def phone_session() -> Any:
        return await phone_tab.get_state(SessionState)

    assert run(phone_session()).signed_in is False
    assert phone_chat.conversations == [] and phone_chat._user_id is None
    assert phone_tab.router.session.client_token not in run(get_registry().tokens(ada.id))
    # The phone's next event, or a reload, ends on the login page too.
    assert _redirects_to_login(run(phone_chat.search("b")))
    assert _redirects_to_login(run(_tab(phone.cookie).load()))
    assert auth.login(session, username="ada", password=NEW_PASSWORD, ip="x").user.id == ada.id


@pytest.mark.parametrize(
    ("current", "new", "confirm", "error"),
    [
        ("wrong one", NEW_PASSWORD, NEW_PASSWORD, "That password is not correct."),
        (PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "!", "The two new passwords do not match."),
        (PASSWORD, "short", "short", "A password needs at least 8 characters."),
    ],
)
def test_refused_password_change_shows_why_and_changes_nothing(
    app_db, session, current, new, confirm, error
):
    ada = _person(session, "Ada")
    phone = _device(session, ada)
    tab = _settings_tab(ada)

    result = run(
        tab.change_password(
            {"current_password": current, "new_password": new, "confirm_password": confirm}
        )
    )

    assert result is None
    assert tab.change_error == error
    assert _live_sessions(session, ada.id) == {ada.session_id, phone.session_id}
    assert passwords.verify(PASSWORD, _user(session, ada.id).password_hash)[0]


def test_sign_out_everywhere_ends_this_tab_too(app_db, session, monkeypatch, spawned):
    ada = _person(session, "Ada")
    phone = _device(session, ada)
    here = _settings_tab(ada)
    phone_tab, _ = _chat_tab(phone)
    app = _ConnectedTabs(here, phone_tab)
    push.install(ReflexTabs(app))

    result = run(here.sign_out_everywhere())

    assert result is SessionState.log_out
    assert _live_sessions(session, ada.id) == set()
    _run_spawned(spawned)
    assert app.sent_to_login(phone_tab)
    with pytest.raises(NotAuthenticated):
        auth.authenticate(session, ada.cookie.split("=", 1)[1])


# ---------------------------------------------------------------------------- delete account


def test_wrong_password_in_the_dialog_deletes_nothing(app_db, session, spawned):
    ada = _person(session, "Ada")
    tab = _settings_tab(ada)
    run(tab.set_delete_open(True))

    assert run(tab.delete_account({"delete_password": "not it"})) is None

    assert tab.delete_error == "That password is not correct."
    assert tab.delete_open is True
    assert _user(session, ada.id) is not None
    assert spawned == []
    run(tab.set_delete_open(False))
    assert tab.delete_error == ""


def test_deleting_the_account_tells_ex_friends_open_screens(app_db, session, monkeypatch, spawned):
    ada, bob, cat = _person(session, "Ada"), _person(session, "Bob"), _person(session, "Cat")
    for other in (bob, cat):
        sent = friend_requests.send_request(session, actor_id=ada.id, username=other.username)
        friend_requests.accept_request(session, actor_id=other.id, request_id=sent.request_id)
    friend_requests.send_request(session, actor_id=bob.id, username="Cat")
    here = _settings_tab(ada)
    bob_tab, bob_chat = _chat_tab(bob)
    run(bob_chat.open_conversation("Ada"))
    assert [f.username for f in bob_chat.friend_list] == ["Ada"]
    app = _ConnectedTabs(here, bob_tab)
    push.install(ReflexTabs(app))

    result = run(here.delete_account({"delete_password": PASSWORD}))

    assert result is SessionState.log_out
    assert _user(session, ada.id) is None
    _run_spawned(spawned)
    assert bob_chat.friend_list == []
    assert bob_chat.active_username == ""  # the open conversation closed
    assert [r.username for r in bob_chat.outgoing] == ["Cat"]  # the rest is untouched
    # The username is free again.
    assert (
        users.check_register(session, username="ada", password=PASSWORD, ip="192.0.2.1").id
        != ada.id
    )


# --------------------------------------------------------------------------------- profile


def test_profile_edits_are_saved_shown_and_refused_when_invalid(app_db, session):
    ada = _person(session, "Ada")
    tab = _settings_tab(ada)
    assert (tab.display_name, tab.status_message, tab.avatar) == ("Ada", "", "")

    result = run(tab.save_profile({"display_name": "  Ada L.  ", "status_message": "Away"}))
    assert "Profile saved" in _toast(result)
    assert (tab.display_name, tab.status_message, tab.profile_error) == ("Ada L.", "Away", "")
    stored = _user(session, ada.id)
    assert (stored.display_name, stored.status_message) == ("Ada L.", "Away")

    assert run(tab.save_profile({"display_name": "   ", "status_message": "x"})) is None
    assert "display name" in tab.profile_error
    assert _user(session, ada.id).display_name == "Ada L."  # nothing written


def test_a_picture_shows_after_upload_and_goes_with_its_file(
    app_db, session, tmp_path, monkeypatch
):
    monkeypatch.setattr(get_settings(), "upload_dir", tmp_path / "uploads")
    ada = _person(session, "Ada")
    tab = _settings_tab(ada)
    source = storage.incoming_path()
    source.write_bytes(media_samples.png(300, 200))
    with session_scope() as db:
        avatars.set_avatar(db, actor_id=ada.id, source=source)
    run(tab.picture_changed())
    assert tab.avatar.startswith("/api/users/Ada/avatar?v=")
    key = _user(session, ada.id).avatar_key
    assert storage.path_for(key).is_file()

    run(tab.remove_picture())
    assert tab.avatar == ""
    assert _user(session, ada.id).avatar_key is None
    assert not storage.path_for(key).exists()
