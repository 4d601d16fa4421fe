"""The settings page of one tab: theme, receipts, default timer, password, sessions, deletion.

Thin by design: every read goes through ``services.accounts``, every change through an
action (``actions.accounts``, which tells friends' screens), as the user proven by the
session cookie on *this* event (``SessionState._signed_in``); no handler takes a user id
from the browser.

Ending sessions elsewhere (a password change, "sign out everywhere", a deleted account) also
reaches tabs that are open right now: the action publishes ``SessionsEnded`` and the live
layer empties those tabs and sends them to the login page. A tab it misses (another worker
without Redis, a race) still ends up there at its next event or reload, because every event
verifies the session again.
"""

from __future__ import annotations

from typing import Any

import reflex as rx

from iris_reflex.actions import accounts as account_actions
from iris_reflex.db import in_session
from iris_reflex.errors import DomainError
from iris_reflex.live import push
from iris_reflex.paths import LOGIN_ROUTE
from iris_reflex.services import accounts, users
from iris_reflex.services.timers import DEFAULT_TIMER_CHOICES, parse_period, period_text
from iris_reflex.state import rows
from iris_reflex.state.guard import guarded
from iris_reflex.state.sealed import Sealed
from iris_reflex.state.session import SessionState, tab_address

_PRESETS = {v for v, _ in DEFAULT_TIMER_CHOICES} - {"custom"}
THEMES: list[tuple[str, str]] = [("light", "Light"), ("dark", "Dark"), ("system", "System")]
PASSWORD_FIELDS = ("current_password", "new_password", "confirm_password")
DELETE_FIELD = "delete_password"
UNREADABLE_TIMER = "Write the custom timer like 90s, 10m, 2h, 3d or 1w."


def _profile_refused(state: Any, message: str) -> None:
    state.profile_error = message


def _change_refused(state: Any, message: str) -> None:
    state.change_error = message


def _delete_refused(state: Any, message: str) -> None:
    state.delete_error = message


def _to_login(_state: Any, _message: str) -> Any:
    return rx.redirect(LOGIN_ROUTE)


class SettingsState(Sealed, rx.State):
    """What the settings page shows, and the theme every signed-in page applies (sealed when
    persisted, like every Iris state)."""

    theme: str = ""  # "" until the user's theme is known, then light, dark or system
    display_name: str = ""
    status_message: str = ""
    avatar: str = ""  # the picture's URL path, "" for none
    profile_error: str = ""
    read_receipts: bool = True
    timer_choice: str = "0"
    custom_timer: str = ""
    change_error: str = ""
    delete_error: str = ""
    delete_open: bool = False
    loaded: bool = False

    async def _session(self) -> SessionState:
        return await self.get_state(SessionState)

    async def _signed_in(self) -> int:
        """Who sent this event, verified against the session table now."""
        return await (await self._session())._signed_in()

    def _token(self) -> str:
        return self.router.session.client_token

    async def _empty_tab(self) -> None:
        """The session is gone: this page's profile fields go with the home page's states."""
        await (await self._session())._empty_tab()
        self.display_name = self.status_message = self.avatar = ""
        self.profile_error = self.change_error = self.delete_error = ""
        self.custom_timer = ""
        self.delete_open = self.loaded = False

    def _show(self, preferences: accounts.Preferences) -> None:
        self.theme = preferences.theme
        self.read_receipts = preferences.read_receipts
        seconds = preferences.default_timer_seconds
        if seconds is None:
            self.timer_choice, self.custom_timer = "0", ""
        elif str(seconds) in _PRESETS:
            self.timer_choice, self.custom_timer = str(seconds), ""
        else:
            self.timer_choice, self.custom_timer = "custom", period_text(seconds)

    async def _show_profile(self, user_id: int) -> None:
        me = users.Me.of(await in_session(users.access_user, user_id))
        self.display_name = me.display_name
        self.status_message = me.status_message
        self.avatar = rows.avatar_path(me)
        self.profile_error = ""
        (await self._session())._show_me(me)

    # ----------------------------------------------------------------------------- profile

    @rx.event
    @guarded(refused=_profile_refused)
    async def save_profile(self, form: dict[str, Any]):
        """Name and status; friends' open screens show them at once."""
        user_id = await self._signed_in()
        await in_session(
            account_actions.update_profile,
            actor_id=user_id,
            display_name=str(form.get("display_name", "")),
            status_message=str(form.get("status_message", "")),
            skip_token=self._token(),
        )
        await self._show_profile(user_id)
        return rx.toast.success("Profile saved.")

    @rx.event
    @guarded
    async def picture_changed(self) -> None:
        """The page uploaded a new picture (``PUT /api/me/avatar``, which told friends)."""
        await self._show_profile(await self._signed_in())

    @rx.event
    @guarded
    async def remove_picture(self) -> None:
        """Back to the initial letter; the file is deleted."""
        user_id = await self._signed_in()
        await in_session(account_actions.remove_avatar, actor_id=user_id, skip_token=self._token())
        await self._show_profile(user_id)

    # ----------------------------------------------------------------------------- loading

    @rx.event
    @guarded(refused=_to_login)
    async def load(self) -> None:
        """On load of /settings (after ``require_user``): show the user's choices."""
        user_id = await self._signed_in()
        preferences = await in_session(accounts.get_preferences, actor_id=user_id)
        # Registered like a chat tab, so a session ended elsewhere reaches this tab too.
        await push.register_tab(user_id, self._token())
        self._show(preferences)
        await self._show_profile(user_id)
        self.change_error = ""
        self.delete_error = ""
        self.delete_open = False
        self.loaded = True

    @rx.event
    async def load_theme(self) -> None:
        """On mount of any signed-in page: the user's remembered theme (the page applies it)."""
        try:
            user_id = await self._signed_in()
            self.theme = (await in_session(accounts.get_preferences, actor_id=user_id)).theme
        except DomainError:
            return  # the page's own on_load sends a signed-out tab to the login page

    # ------------------------------------------------------------------------- preferences

    @rx.event
    @guarded
    async def set_theme(self, theme: str) -> None:
        """Remember the theme; the page applies it as soon as ``theme`` changes."""
        user_id = await self._signed_in()
        self.theme = await in_session(accounts.set_theme, actor_id=user_id, theme=str(theme))

    @rx.event
    @guarded
    async def set_read_receipts(self, enabled: bool) -> None:
        """Send (and see) read receipts, or neither: friends' screens show it at once."""
        user_id = await self._signed_in()
        await in_session(
            account_actions.set_read_receipts,
            actor_id=user_id,
            enabled=bool(enabled),
            skip_token=self._token(),
        )
        self.read_receipts = bool(enabled)

    async def _save_timer(self, seconds: int | None) -> str:
        """Store the default timer; the confirmation to show."""
        user_id = await self._signed_in()
        stored = await in_session(accounts.set_default_timer, actor_id=user_id, seconds=seconds)
        if stored is None:
            return "New chats start without disappearing messages."
        label = dict(DEFAULT_TIMER_CHOICES).get(str(stored), period_text(stored))
        return f"New chats start with disappearing messages: {label}."

    @rx.event
    @guarded
    async def set_timer_choice(self, choice: str):
        """A preset is saved at once; "Custom…" waits for a period to be typed and saved."""
        await self._signed_in()
        choice = str(choice)
        if choice == "custom":
            self.timer_choice = choice
            return None
        if choice not in _PRESETS:
            return rx.toast.error("Pick one of the listed timers.")
        saved = await self._save_timer(int(choice))
        self.timer_choice, self.custom_timer = choice, ""
        return rx.toast.success(saved)

    @rx.event
    @guarded
    async def set_custom_timer(self, text: str) -> None:
        """The custom period as it is typed (e.g. "90s", "2h")."""
        await self._signed_in()
        self.custom_timer = str(text)[:16]

    @rx.event
    @guarded
    async def save_custom_timer(self, _form: dict[str, Any] | None = None):
        """Save the typed period as the default timer for new chats."""
        seconds = parse_period(self.custom_timer)
        if seconds is None:
            return rx.toast.error(UNREADABLE_TIMER)
        saved = await self._save_timer(seconds)
        self.custom_timer = period_text(seconds)
        return rx.toast.success(saved)

    # ------------------------------------------------------------------ password, sessions

    @rx.event
    @guarded(refused=_change_refused)
    async def change_password(self, form: dict[str, Any]):
        """Check the current password, store the new one, sign out every other session."""
        self.change_error = ""
        current, new, confirm = (str(form.get(name, "")) for name in PASSWORD_FIELDS)
        if new != confirm:
            self.change_error = "The two new passwords do not match."
            return None
        session = await self._session()
        user_id = await session._signed_in()
        assert session._session_id is not None
        ended = await in_session(
            account_actions.change_password,
            actor_id=user_id,
            session_id=session._session_id,
            current_password=current,
            new_password=new,
            ip=tab_address(self.router),
            skip_token=self._token(),
        )
        others = "No other device was signed in."
        if ended:
            others = f"Signed out of {ended} other session{'s' if ended != 1 else ''}."
        return [
            *(rx.set_value(name, "") for name in PASSWORD_FIELDS),
            rx.toast.success(f"Password changed. {others}"),
        ]

    @rx.event
    @guarded
    async def sign_out_everywhere(self):
        """End every session of the user, this one too, and go to the login page."""
        user_id = await self._signed_in()
        await in_session(
            account_actions.sign_out_everywhere, actor_id=user_id, skip_token=self._token()
        )
        return SessionState.log_out

    # ---------------------------------------------------------------------- delete account

    @rx.event
    @guarded
    async def set_delete_open(self, open_: bool) -> None:
        """The confirmation dialog opens or closes; a stale error goes with it."""
        await self._signed_in()
        self.delete_open = bool(open_)
        self.delete_error = ""

    @rx.event
    @guarded(refused=_delete_refused)
    async def delete_account(self, form: dict[str, Any]):
        """Delete the account after the password is typed again; friends' screens update."""
        self.delete_error = ""
        user_id = await self._signed_in()
        await in_session(
            account_actions.delete_account,
            actor_id=user_id,
            password=str(form.get(DELETE_FIELD, "")),
            ip=tab_address(self.router),
            skip_token=self._token(),
        )
        self.delete_open = False
        self.loaded = False
        return SessionState.log_out
