"""The composer of the open conversation: text, files, the timer picker, typing."""

from __future__ import annotations

from typing import Any

import reflex as rx

from iris_reflex.actions import messages as message_actions
from iris_reflex.db import in_session
from iris_reflex.errors import Invalid
from iris_reflex.live import outbox
from iris_reflex.live.events import Typing
from iris_reflex.services import friends
from iris_reflex.services.timers import TIMER_CHOICES, parse_period
from iris_reflex.state import rows
from iris_reflex.state.conversation import ConversationState, MessagesState
from iris_reflex.state.guard import guarded
from iris_reflex.state.sidebar import SidebarState

MAX_FILES_IN_FORM = 100
CUSTOM_TIMER_MAX = 16
UNREADABLE_TIMER = "Write the custom timer like 90s, 10m, 2h, 3d or 1w."
_CHOICES = {value for value, _ in TIMER_CHOICES}
CLEAR_SENT_FILES = "window.irisUploads && window.irisUploads.clear();"


def _refused(_state: Any, message: str) -> list[Any]:
    """A refused send: say why, and give the composer's files back to the tray."""
    return [
        rx.toast.error(message),
        rx.call_script("window.irisUploads && window.irisUploads.restore()"),
    ]


class ComposerState(ConversationState):
    """The timer picker of the composer (the text and files stay in the browser until sent)."""

    timer_choice: str = "default"
    custom_timer: str = ""
    timer_after_read: bool = False

    @rx.event
    @guarded(refused=_refused)
    async def send_message(self, form: dict[str, Any]):
        """Send the composer's text and finished uploads to the open conversation."""
        body = str(form.get("body", ""))
        raw_ids = [part for part in str(form.get("attachment_ids", "")).split(",") if part]
        attachment_ids = [rows.as_id(part) for part in raw_ids[:MAX_FILES_IN_FORM]]
        if None in attachment_ids:
            raise Invalid("A file to send is no longer available: attach it again.")
        if not self.active_username:
            raise Invalid("Open a conversation first.")
        timer_seconds, timer_mode = self._picked_timer()
        if timer_seconds == -1:
            raise Invalid(UNREADABLE_TIMER)
        chosen = {
            "username": self.active_username,
            "body": body,
            "timer_seconds": timer_seconds,
            "timer_mode": timer_mode,
            "skip_token": self._token(),
        }
        # Text to a friend written to before: one statement. Else, or when that route no
        # longer holds, the full path (which also says what is wrong).
        sent = None
        if not attachment_ids:
            sent = await self._as_claimed(message_actions.send_on_known_route, **chosen)
        if sent is None:
            sent = await self._as_signed_in(
                message_actions.send_message,
                attachment_ids=[i for i in attachment_ids if i is not None],
                **chosen,
            )
        # The new message is shown as the service returned it, for this user: no re-read.
        messages = await self.get_state(MessagesState)
        messages._append([sent.message])
        sidebar = await self.get_state(SidebarState)
        if not sidebar._message_shown(sent.message, read=True):
            await sidebar._refresh()
        # The list scrolls to the new row by itself (``assets/js/uploads.js``). Only files
        # sent with it need a word back, to leave the tray: a text message costs its tab one
        # emit, not two (the hot path).
        return rx.call_script(CLEAR_SENT_FILES) if attachment_ids else None

    async def _show_changes(self) -> None:
        messages = await self.get_state(MessagesState)
        await messages._reload()
        sidebar = await self.get_state(SidebarState)
        await sidebar._refresh()

    def _picked_timer(self) -> tuple[int | None, str | None]:
        """(seconds, mode) from the composer's picker; seconds -1 means unreadable."""
        mode = "after_read" if self.timer_after_read else None
        if self.timer_choice == "default":
            return None, mode
        if self.timer_choice == "custom":
            seconds = parse_period(self.custom_timer)
            return (-1 if seconds is None else seconds), mode
        # A preset ("0" is Off): set_timer_choice only accepts TIMER_CHOICES values.
        choice = self.timer_choice
        return (int(choice) if choice.isascii() and choice.isdigit() else -1), mode

    @rx.event
    @guarded
    async def set_timer_choice(self, choice: str) -> None:
        """The composer's timer picker."""
        await self._signed_in()
        if choice in _CHOICES:
            self.timer_choice = choice

    @rx.event
    @guarded
    async def set_custom_timer(self, text: str) -> None:
        """The custom period typed next to the picker (e.g. "90s", "2h")."""
        await self._signed_in()
        self.custom_timer = str(text)[:CUSTOM_TIMER_MAX]

    @rx.event
    @guarded
    async def set_timer_after_read(self, on: bool) -> None:
        """Start the countdown when the friend reads the message, not when it is sent."""
        await self._signed_in()
        self.timer_after_read = bool(on)

    @rx.event
    @guarded
    async def set_conversation_default(self):
        """Make the picker's timer this conversation's default, for both people."""
        seconds, mode = self._picked_timer()
        if self.timer_choice == "default" or seconds == -1:
            raise Invalid("Pick a timer (or Off) first, then set it as the default.")
        user_id = await self._signed_in()
        sent = await in_session(
            message_actions.set_conversation_timer,
            actor_id=user_id,
            username=self.active_username,
            seconds=seconds,
            mode=mode or "from_send",
            skip_token=self._token(),
        )
        self.timer_choice = "default"
        await self._show_changes()
        return rx.toast.success(sent.message.body)

    @rx.event
    @guarded(refused=lambda _state, _message: None)
    async def typing(self, _text: str = "") -> None:
        """The composer changed (throttled by the page): tell the friend's open tabs."""
        if not self.active_username:
            return
        user_id = await self._signed_in()
        friend = await in_session(
            friends.access_friend, actor_id=user_id, username=self.active_username
        )
        assert friend.id is not None
        outbox.publish(Typing(to_user_id=friend.id, username=self.username))

    def _clear(self) -> None:
        self.timer_choice = "default"
        self.custom_timer = ""
        self.timer_after_read = False
