"""The open conversation: who it is with (header, presence, typing), and its messages.

``ConversationState`` is small on purpose: a typing or presence push loads and diffs only it.
The page of messages lives in its substate ``MessagesState``; the composer in
``state.composer``. Both read the open friend from here.
"""

from __future__ import annotations

import dataclasses

import reflex as rx

from iris_reflex import clock
from iris_reflex.actions import messages as message_actions
from iris_reflex.db import in_session
from iris_reflex.errors import DomainError
from iris_reflex.live import push
from iris_reflex.services import conversations, friends, pairs
from iris_reflex.services.message_views import MessageView
from iris_reflex.services.users import PublicUser
from iris_reflex.state import rows
from iris_reflex.state.guard import guarded
from iris_reflex.state.rows import MessageRow
from iris_reflex.state.session import SessionState
from iris_reflex.state.sidebar import SidebarState

TZ_MAX = 64
SCROLL_TO_END = (
    "setTimeout(() => { const el = document.getElementById('message-list');"
    " if (el) el.scrollTop = el.scrollHeight;"
)
RESET_TRAY = "window.irisUploads && window.irisUploads.reset();"
CANNOT_DELETE = "That message cannot be deleted."


class ConversationState(SessionState):
    """Who the open conversation is with, whether they are online, whether they type."""

    active_username: str = ""
    active_display_name: str = ""
    active_avatar: str = ""
    active_status: str = ""
    active_presence: str = ""
    friend_typing: bool = False
    typing_seq: int = 0
    _active_friend_id: int | None = None  # who ``active_username`` is, for live pushes

    @rx.event
    @guarded
    async def detect_timezone(self):
        """On load of the home page: ask the browser for its time zone."""
        await self._signed_in()
        return rx.call_script(
            "Intl.DateTimeFormat().resolvedOptions().timeZone",
            callback=ConversationState.set_timezone,
        )

    @rx.event
    @guarded
    async def set_timezone(self, zone: str) -> None:
        """The browser's time zone, so times and day separators read as local time.

        It is the page load's last step, after this tab registered for pushes: the open
        conversation's presence is read again here, since a friend who came online while the
        tab was (re)connecting was announced before this tab could hear of it.
        """
        await self._signed_in()
        if isinstance(zone, str) and len(zone) < TZ_MAX:
            self._tz = zone
            sidebar = await self.get_state(SidebarState)
            await sidebar._refresh()
            messages = await self.get_state(MessagesState)
            await messages._reload()
            await self._refresh_presence()

    @rx.event
    @guarded
    async def open_conversation(self, username: str):
        """Show a conversation with a friend and mark what arrived as read."""
        user_id = await self._signed_in()
        friend = await in_session(friends.access_friend, actor_id=user_id, username=username)
        self.active_username = friend.username
        self._active_friend_id = friend.id
        self._show_friend(PublicUser.of(friend))
        self.friend_typing = False
        await self._refresh_presence()
        messages = await self.get_state(MessagesState)
        await messages._reload()
        await self._mark_read()
        sidebar = await self.get_state(SidebarState)
        sidebar._set_active(self.active_username)
        await sidebar._refresh()
        push.store_tab_soon(self._token())  # a tab reconnecting elsewhere comes back to it
        return rx.call_script(
            RESET_TRAY + SCROLL_TO_END + " document.getElementById('composer')?.focus(); }, 50)"
        )

    @rx.event
    @guarded
    async def close_conversation(self):
        """Back to the sidebar (phone-sized screens); files not sent are discarded."""
        await self._signed_in()
        await self._close()
        sidebar = await self.get_state(SidebarState)
        await sidebar._refresh()
        push.store_tab_soon(self._token())
        return rx.call_script(RESET_TRAY)

    def _show_friend(self, friend: PublicUser) -> None:
        self.active_display_name = friend.display_name
        self.active_avatar = rows.avatar_path(friend)
        self.active_status = friend.status_message

    def _refresh_friend(self, listed: list[PublicUser]) -> bool:
        """The open friend's name, picture and status (live edits); False when they are no
        longer a friend."""
        for friend in listed:
            if rows.same_user(friend.username, self.active_username):
                self._show_friend(friend)
                return True
        return False

    async def _mark_read(self) -> None:
        if self._user_id is None or not self.active_username:
            return
        await in_session(
            message_actions.mark_read,
            actor_id=self._user_id,
            username=self.active_username,
            skip_token=self._token(),
        )

    async def _refresh_presence(self) -> None:
        """ "online", or when the open conversation's friend was last seen."""
        if self._user_id is None or not self.active_username:
            self.active_presence = ""
            return
        try:
            friend = await in_session(
                friends.access_friend, actor_id=self._user_id, username=self.active_username
            )
        except DomainError:
            self.active_presence = ""
            return
        assert friend.id is not None
        if await push.is_online(friend.id):
            self.active_presence = "online"
        elif friend.last_seen_at is not None:
            tz = rows.zone(self._tz)
            today = clock.now().astimezone(tz).date()
            self.active_presence = rows.last_seen_text(friend.last_seen_at, tz, today)
        else:
            self.active_presence = ""

    def _on_friend_typing(self, username: str) -> None:
        """The friend is typing: show it; the page fades it out unless it is renewed."""
        if rows.same_user(username, self.active_username):
            self.friend_typing = True
            self.typing_seq += 1

    async def _close(self) -> None:
        self._clear()
        messages = await self.get_state(MessagesState)
        messages._clear()
        sidebar = await self.get_state(SidebarState)
        sidebar._set_active("")

    def _clear(self) -> None:
        self.friend_typing = False
        self.active_presence = ""
        self.active_username = ""
        self._active_friend_id = None
        self.active_display_name = ""
        self.active_avatar = ""
        self.active_status = ""


def _by_id(view: MessageView) -> int:
    return view.id


# Rows added to an open page go to ``arrived`` until there are this many, then join
# ``messages``: a delta carries every changed list whole, so a new message sends a few rows,
# not the page (and one delta in this many carries the page).
ARRIVED_MAX = 16
# A page grows with the messages that arrive while it is open, up to this many; then it is
# cut back to the newest ``PAGE_MAX``.
KEPT_MAX = 2 * conversations.PAGE_MAX


class MessagesState(ConversationState):
    """The open conversation's newest page of messages (and older pages on request).

    The page is shown as two lists, one after the other: ``messages``, the rows as last
    built, and ``arrived``, the rows of messages that came since (at most ``ARRIVED_MAX``).
    """

    messages: list[MessageRow] = []
    arrived: list[MessageRow] = []
    has_older: bool = False
    # A tuple, replaced whole: Reflex wraps a mutable value in a change-tracking proxy on
    # every read (and each item as it is iterated), which cost more than the rows' work.
    _views: tuple[MessageView, ...] = ()

    _shown_on: str = ""  # the viewer's date when the rows were built ("Today" labels)

    def _show(self) -> None:
        assert self._user_id is not None
        tz = rows.zone(self._tz)
        today = clock.now().astimezone(tz).date()
        self._shown_on = today.isoformat()
        self.messages = rows.message_rows(self._views, viewer_id=self._user_id, tz=tz, today=today)
        if self.arrived:
            self.arrived = []

    def _rows_shown(self) -> int:
        return len(self.messages) + len(self.arrived)

    @rx.event
    @guarded
    async def load(self) -> None:
        """On (re)load of the home page: the open conversation's page is read again. A tab
        comes back with its stored states, and with several workers those may be seconds
        older than its screen (the worker holding them died before writing them back)."""
        await self._signed_in()
        await self._reload()

    def _show_after(self, known: int, new: list[MessageView]) -> None:
        """Rows for messages that follow the ``known`` ones shown, added after them (the
        last known message gives the day separator and grouping): a new message costs one
        row, not a rebuild of the page. On a new day every label is rebuilt."""
        assert self._user_id is not None
        tz = rows.zone(self._tz)
        today = clock.now().astimezone(tz).date()
        if today.isoformat() != self._shown_on or known != self._rows_shown():
            self._show()
            return
        context = self._views[known - 1 : known] if known else []
        added = rows.message_rows([*context, *new], viewer_id=self._user_id, tz=tz, today=today)
        fresh = added[len(context) :]
        if len(self.arrived) + len(fresh) > ARRIVED_MAX:
            self.messages = [*self.messages, *self.arrived, *fresh]
            self.arrived = []
        else:
            self.arrived.extend(fresh)

    async def _reload(self) -> None:
        """Re-read the open conversation's newest messages (as many as are shown, at least a
        page, at most ``PAGE_MAX``), so expired and deleted ones drop out."""
        if self._user_id is None or not self.active_username:
            return
        limit = min(conversations.PAGE_MAX, max(conversations.PAGE_DEFAULT, len(self._views)))
        try:
            page = await in_session(
                conversations.read_page,
                actor_id=self._user_id,
                username=self.active_username,
                limit=limit,
            )
        except DomainError:  # no longer friends: the conversation closes
            conversation = await self.get_state(ConversationState)
            await conversation._close()
            return
        self._views = tuple(reversed(page.messages))
        self.has_older = page.has_older
        self._show()

    def _append(self, views: list[MessageView]) -> None:
        """Show messages this tab already has as the user sees them (the user's own, just
        sent), without re-reading the page. A page that grew past ``KEPT_MAX`` is cut back to
        ``PAGE_MAX`` (one rebuild every ``PAGE_MAX`` messages, not one per message)."""
        known = {v.id for v in self._views}
        fresh = sorted((v for v in views if v.id not in known), key=_by_id)
        if not fresh:
            return
        newest = self._views[-1].id if self._views else 0
        merged = tuple(sorted([*self._views, *fresh], key=_by_id))
        if len(merged) > KEPT_MAX:
            merged = merged[-conversations.PAGE_MAX :]
            self.has_older = True
            self._views = merged
            self._show()
        elif fresh[0].id > newest:  # the usual case: newer than everything shown
            shown = len(self._views)
            self._views = merged
            self._show_after(shown, fresh)
        else:
            self._views = merged
            self._show()

    def _is_open_for(self, view: MessageView) -> bool:
        """Whether ``view`` belongs to the conversation open in this tab."""
        if self._user_id is None or self._active_friend_id is None:
            return False
        friend_id = pairs.other(view.sender_id, view.recipient_id, me=self._user_id)
        return friend_id == self._active_friend_id

    def _message_arrived(self, view: MessageView) -> bool:
        """A new message (the friend's, or the user's own from another tab), handed over by
        the fan-out as this user sees it: shown at once when its conversation is open.
        Returns whether it is on screen."""
        if not self._is_open_for(view):
            return False
        if view.sender_id != self._user_id:
            self.friend_typing = False
        self._append([view])
        return True

    async def _read_by_friend(self, message_ids: tuple[int, ...]) -> None:
        """The friend read these of the user's messages: their ticks turn to read. An
        after-read timer starts now, and only a re-read knows its deadline."""
        read = set(message_ids)
        shown = [v for v in self._views if v.id in read]
        if any(v.timer_mode == "after_read" for v in shown):
            await self._reload()
            return
        if not shown:
            return
        now = clock.now()
        self._views = tuple(
            dataclasses.replace(v, read_at=now) if v.id in read and v.read_at is None else v
            for v in self._views
        )
        if self._rows_shown() != len(self._views):
            self._show()
            return
        # Only those ticks change; a receipt is nearly always for the newest rows, so the
        # page itself is looked at only when ``arrived`` did not hold them all.
        unticked = {v.id for v in shown}
        for listed in (self.arrived, self.messages):
            if not unticked:
                break
            for index, row in enumerate(listed):
                if row.id in unticked:
                    unticked.discard(row.id)
                    if row.mine and row.status != "read":
                        listed[index] = dataclasses.replace(row, status="read")

    @rx.event
    @guarded
    async def load_older(self) -> None:
        """Prepend the previous page (keyset on the oldest id shown, never OFFSET)."""
        if not self.active_username or not self._views:
            return
        user_id = await self._signed_in()
        page = await in_session(
            conversations.read_page,
            actor_id=user_id,
            username=self.active_username,
            before_id=self._views[0].id,
            limit=conversations.PAGE_DEFAULT,
        )
        self._views = tuple(reversed(page.messages)) + self._views
        self.has_older = page.has_older
        self._show()

    @rx.event
    @guarded(refused=lambda _state, _message: rx.toast.error(CANNOT_DELETE))
    async def delete_message(self, message_id: int) -> None:
        """Delete one's own message for everyone."""
        user_id = await self._signed_in()
        if (message := rows.as_id(message_id)) is None:
            raise DomainError(CANNOT_DELETE)
        await in_session(
            message_actions.delete_for_everyone,
            actor_id=user_id,
            message_id=message,
            skip_token=self._token(),
        )
        await self._reload()
        sidebar = await self.get_state(SidebarState)
        await sidebar._refresh()

    def _clear(self) -> None:
        self.messages = []
        self.arrived = []
        self.has_older = False
        self._views = ()
        self._shown_on = ""
