"""The settings page of one tab: theme, receipts, default timer, password, sessions, deletion.

Thin by design: every read and write goes through ``services.accounts`` (receipts through
``ChatState.set_read_receipts``, so its pushes to friends stay in one place), as the user
proven by the session cookie on *this* event (``SessionState.verified_identity``); no handler
takes a user id from the browser.

Ending sessions elsewhere (a password change, "sign out everywhere", a deleted account) also
reaches tabs that are open right now: ``live.push`` deliberately skips tabs whose session was
revoked, so ``push.sign_out_ended_sessions`` visits them itself, clears what they show and
sends them to the login page. A tab it misses (another worker without Redis, a race) still
ends up there at its next event or reload, because every protected event verifies the
session again.
"""

from __future__ import annotations

import logging
from typing import Any

import reflex as rx

from iris_reflex.db import session_scope
from iris_reflex.errors import DomainError, NotAuthenticated
from iris_reflex.live import notify, push
from iris_reflex.live.registry import get_registry
from iris_reflex.services import accounts, auth, avatars, users
from iris_reflex.services.timers import DEFAULT_TIMER_CHOICES, parse_period, period_text
from iris_reflex.state.chat import ChatState, avatar_path, spawn
from iris_reflex.state.session import LOGIN_ROUTE, SessionState

log = logging.getLogger("iris.settings")

_PRESETS = {v for v, _ in DEFAULT_TIMER_CHOICES} - {"custom"}
THEMES: list[tuple[str, str]] = [("light", "Light"), ("dark", "Dark"), ("system", "System")]
PASSWORD_FIELDS = ("current_password", "new_password", "confirm_password")
DELETE_FIELD = "delete_password"


class SettingsState(rx.State):
    """What the settings page shows, and the theme every signed-in page applies."""

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

    async def _identity(self) -> auth.Identity:
        """Who sent this event, verified against the session table now."""
        session_state = await self.get_state(SessionState)
        return session_state.verified_identity()

    def _token(self) -> str:
        return self.router.session.client_token

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

    def _show_profile(self, user_id: int) -> None:
        with session_scope() as db:
            me = users.Me.of(users.access_user(db, user_id))
        self.display_name = me.display_name
        self.status_message = me.status_message
        self.avatar = avatar_path(me)
        self.profile_error = ""

    # ----------------------------------------------------------------------------- profile

    @rx.event
    async def save_profile(self, form: dict[str, Any]):  # type: ignore[no-untyped-def]
        """Name and status; friends' open screens show them at once."""
        try:
            identity = await self._identity()
            with session_scope() as db:
                users.update_profile(
                    db,
                    actor_id=identity.user_id,
                    display_name=str(form.get("display_name", "")),
                    status_message=str(form.get("status_message", "")),
                )
        except NotAuthenticated:
            return rx.redirect(LOGIN_ROUTE)
        except DomainError as exc:
            self.profile_error = exc.message
            return None
        self._show_profile(identity.user_id)
        spawn(notify.profile_changed(identity.user_id, skip_token=self._token()))
        return rx.toast.success("Profile saved.")

    @rx.event
    async def picture_changed(self):  # type: ignore[no-untyped-def]
        """The page uploaded a new picture (``PUT /api/me/avatar``, which told friends)."""
        try:
            identity = await self._identity()
        except NotAuthenticated:
            return rx.redirect(LOGIN_ROUTE)
        self._show_profile(identity.user_id)
        return None

    @rx.event
    async def remove_picture(self):  # type: ignore[no-untyped-def]
        """Back to the initial letter; the file is deleted."""
        try:
            identity = await self._identity()
            with session_scope() as db:
                avatars.remove_avatar(db, actor_id=identity.user_id)
        except NotAuthenticated:
            return rx.redirect(LOGIN_ROUTE)
        self._show_profile(identity.user_id)
        spawn(notify.profile_changed(identity.user_id, skip_token=self._token()))
        return None

    # ----------------------------------------------------------------------------- loading

    @rx.event
    async def load(self):  # type: ignore[no-untyped-def]
        """On load of /settings (after ``require_user``): show the user's choices."""
        try:
            identity = await self._identity()
            with session_scope() as db:
                preferences = accounts.get_preferences(db, actor_id=identity.user_id)
        except (NotAuthenticated, DomainError):
            return rx.redirect(LOGIN_ROUTE)
        # Registered like a chat tab, so a session ended elsewhere reaches this tab too.
        await get_registry().add(identity.user_id, self._token())
        self._show(preferences)
        self._show_profile(identity.user_id)
        self.change_error = ""
        self.delete_error = ""
        self.delete_open = False
        self.loaded = True
        return None

    @rx.event
    async def load_theme(self) -> None:
        """On mount of any signed-in page: the user's remembered theme (the page applies it)."""
        try:
            identity = await self._identity()
            with session_scope() as db:
                self.theme = accounts.get_preferences(db, actor_id=identity.user_id).theme
        except (NotAuthenticated, DomainError):
            return  # the page's own on_load sends a signed-out tab to the login page

    # ------------------------------------------------------------------------- preferences

    @rx.event
    async def set_theme(self, theme: str):  # type: ignore[no-untyped-def]
        """Remember the theme; the page applies it as soon as ``theme`` changes."""
        try:
            identity = await self._identity()
            with session_scope() as db:
                self.theme = accounts.set_theme(db, actor_id=identity.user_id, theme=str(theme))
        except NotAuthenticated:
            return rx.redirect(LOGIN_ROUTE)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        return None

    @rx.event
    async def set_read_receipts(self, enabled: bool):  # type: ignore[no-untyped-def]
        """Send (and see) read receipts, or neither: the chat's own handler does it."""
        chat = await self.get_state(ChatState)
        result = await chat.set_read_receipts(bool(enabled))
        if result is None:
            self.read_receipts = bool(enabled)
        return result

    async def _save_timer(self, seconds: int | None) -> tuple[bool, Any]:
        """(saved, what to send the page)."""
        try:
            identity = await self._identity()
            with session_scope() as db:
                stored = accounts.set_default_timer(db, actor_id=identity.user_id, seconds=seconds)
        except NotAuthenticated:
            return False, rx.redirect(LOGIN_ROUTE)
        except DomainError as exc:
            return False, rx.toast.error(exc.message)
        if stored is None:
            return True, rx.toast.success("New chats start without disappearing messages.")
        label = dict(DEFAULT_TIMER_CHOICES).get(str(stored), period_text(stored))
        return True, rx.toast.success(f"New chats start with disappearing messages: {label}.")

    @rx.event
    async def set_timer_choice(self, choice: str):  # type: ignore[no-untyped-def]
        """A preset is saved at once; "Custom…" waits for a period to be typed and saved."""
        choice = str(choice)
        if choice == "custom":
            self.timer_choice = choice
            return None
        if choice not in _PRESETS:
            return rx.toast.error("Pick one of the listed timers.")
        saved, result = await self._save_timer(int(choice))
        if saved:
            self.timer_choice, self.custom_timer = choice, ""
        return result

    @rx.event
    def set_custom_timer(self, text: str) -> None:
        """The custom period as it is typed (e.g. "90s", "2h")."""
        self.custom_timer = str(text)[:16]

    @rx.event
    async def save_custom_timer(self, _form: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
        """Save the typed period as the default timer for new chats."""
        seconds = parse_period(self.custom_timer)
        if seconds is None:
            return rx.toast.error("Write the custom timer like 90s, 10m, 2h, 3d or 1w.")
        saved, result = await self._save_timer(seconds)
        if saved:
            self.custom_timer = period_text(seconds)
        return result

    # ------------------------------------------------------------------ password, sessions

    @rx.event
    async def change_password(self, form: dict[str, Any]):  # type: ignore[no-untyped-def]
        """Check the current password, store the new one, sign out every other session."""
        self.change_error = ""
        current, new, confirm = (str(form.get(name, "")) for name in PASSWORD_FIELDS)
        if new != confirm:
            self.change_error = "The two new passwords do not match."
            return None
        try:
            identity = await self._identity()
            with session_scope() as db:
                ended = accounts.change_password(
                    db,
                    actor_id=identity.user_id,
                    session_id=identity.session_id,
                    current_password=current,
                    new_password=new,
                    ip=self.router.session.client_ip or accounts.UNKNOWN_IP,
                )
        except NotAuthenticated:
            return rx.redirect(LOGIN_ROUTE)
        except DomainError as exc:
            self.change_error = exc.message
            return None
        spawn(push.sign_out_ended_sessions(identity.user_id, skip_token=self._token()))
        others = "No other device was signed in."
        if ended:
            others = f"Signed out of {ended} other session{'s' if ended != 1 else ''}."
        return [
            *(rx.set_value(name, "") for name in PASSWORD_FIELDS),
            rx.toast.success(f"Password changed. {others}"),
        ]

    @rx.event
    async def sign_out_everywhere(self):  # type: ignore[no-untyped-def]
        """End every session of the user, this one too, and go to the login page."""
        try:
            identity = await self._identity()
            with session_scope() as db:
                accounts.sign_out_everywhere(db, actor_id=identity.user_id)
        except NotAuthenticated:
            return rx.redirect(LOGIN_ROUTE)
        spawn(push.sign_out_ended_sessions(identity.user_id, skip_token=self._token()))
        return SessionState.log_out

    # ---------------------------------------------------------------------- delete account

    @rx.event
    def set_delete_open(self, open_: bool) -> None:
        """The confirmation dialog opens or closes; a stale error goes with it."""
        self.delete_open = bool(open_)
        self.delete_error = ""

    @rx.event
    async def delete_account(self, form: dict[str, Any]):  # type: ignore[no-untyped-def]
        """Delete the account after the password is typed again; friends' screens update."""
        self.delete_error = ""
        try:
            identity = await self._identity()
            with session_scope() as db:
                others = accounts.delete_account(
                    db,
                    actor_id=identity.user_id,
                    password=str(form.get(DELETE_FIELD, "")),
                    ip=self.router.session.client_ip or accounts.UNKNOWN_IP,
                )
        except NotAuthenticated:
            return rx.redirect(LOGIN_ROUTE)
        except DomainError as exc:
            self.delete_error = exc.message
            return None
        user_id, token = identity.user_id, self._token()

        async def after_commit() -> None:
            await notify.friends_changed(*others)
            await push.sign_out_ended_sessions(user_id, skip_token=token)

        spawn(after_commit())
        self.delete_open = False
        self.loaded = False
        return SessionState.log_out
