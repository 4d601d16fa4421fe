"""The chat view of one tab: sidebar, friends, the open conversation, and live updates.

Thin by design: every read and write goes through ``services.friends`` and
``services.conversations`` as the verified user; this state only holds what the page shows
(a page of messages, sidebar rows) and turns domain errors into toasts. Other tabs are
updated through ``live.push`` *after* the service has committed; methods that a push runs on
another tab start with ``_`` so the browser can never call them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import reflex as rx

from iris_reflex.api.urls import attachment_url, avatar_url, thumbnail_url
from iris_reflex.db import session_scope
from iris_reflex.errors import DomainError, NotAuthenticated
from iris_reflex.live import notify, presence, push
from iris_reflex.live.registry import get_registry
from iris_reflex.services import attachments as media
from iris_reflex.services import conversations, friends, users
from iris_reflex.services.attachments import AttachmentView
from iris_reflex.services.conversations import MessageView
from iris_reflex.services.timers import TIMER_CHOICES, parse_period
from iris_reflex.services.users import PublicUser
from iris_reflex.state.session import LOGIN_ROUTE, SessionState

log = logging.getLogger("iris.chat")

_background: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, Any]) -> None:
    """Run a push after the current event has released its own state lock."""
    task = asyncio.get_running_loop().create_task(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)


@dataclasses.dataclass
class UserRow:
    """Another user as lists show them."""

    username: str = ""
    display_name: str = ""
    initial: str = ""
    avatar: str = ""  # picture URL path, "" for the initial
    status: str = ""


@dataclasses.dataclass
class RequestRow:
    """A friend request in the incoming or outgoing list."""

    id: int = 0
    username: str = ""
    display_name: str = ""
    initial: str = ""
    avatar: str = ""
    status: str = ""


@dataclasses.dataclass
class ConversationRow:
    """A sidebar row."""

    username: str = ""
    display_name: str = ""
    initial: str = ""
    avatar: str = ""
    preview: str = ""
    time: str = ""
    unread: int = 0
    active: bool = False


@dataclasses.dataclass
class AttachmentRow:
    """A file in a bubble. URLs are paths on the backend; the page makes them absolute."""

    id: int = 0
    kind: str = "file"  # image, video, audio or file
    name: str = ""
    size: str = ""
    url: str = ""
    thumb_url: str = ""
    aspect: str = "auto"  # CSS aspect-ratio of an image, so the list does not jump


def size_text(size: int) -> str:
    """A byte count as people read it: 512 B, 12 KB, 3.4 MB."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


# Consecutive messages of one sender this close together sit tight, as one group.
GROUP_GAP = timedelta(minutes=5)

# Pictures and videos first, then sound, then file cards (as most messengers lay them out).
_KIND_ORDER = {"image": 0, "video": 0, "audio": 1, "file": 2}


def _attachment_row(view: AttachmentView) -> AttachmentRow:
    return AttachmentRow(
        id=view.id,
        kind=view.kind,
        name=view.name,
        size=size_text(view.size_bytes),
        url=attachment_url(view.id),
        thumb_url=thumbnail_url(view.id) if view.has_thumbnail else "",
        aspect=f"{view.width} / {view.height}" if view.width and view.height else "auto",
    )


@dataclasses.dataclass
class MessageRow:
    """A message bubble. ``body`` is rendered as text, never as HTML."""

    id: int = 0
    mine: bool = False
    body: str = ""
    time: str = ""
    day: str = ""
    show_day: bool = False
    status: str = ""  # "sent" or "read" on the viewer's own messages
    notice: bool = False
    expires_ms: int = 0  # deadline in epoch milliseconds, 0 when untimed (page counts down)
    waiting_for_read: bool = False  # an after-read timer that has not started yet
    attachments: list[AttachmentRow] = dataclasses.field(default_factory=list)
    grouped: bool = False  # follows the same sender's previous message closely


def _same_user(a: str, b: str) -> bool:
    """Usernames match in any letter case (as the services match them)."""
    return bool(a) and users.username_key(a) == users.username_key(b)


def _as_id(value: object) -> int | None:
    """An id from the browser, or ``None`` when it is not a whole number a row could have
    (ids are 32-bit: PostgreSQL refuses to even compare a larger one)."""
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if 1 <= number <= 2**31 - 1 else None


def _initial(name: str) -> str:
    return name[:1].upper() or "?"


def avatar_path(user: PublicUser | users.Me) -> str:
    """The picture's URL path (its version makes browsers fetch a new one), "" without."""
    return avatar_url(user.username, user.avatar_version) or ""


def _user_row(user: PublicUser) -> UserRow:
    return UserRow(
        user.username,
        user.display_name,
        _initial(user.display_name),
        avatar_path(user),
        user.status_message,
    )


def _request_row(request_id: int, user: PublicUser) -> RequestRow:
    return RequestRow(
        request_id,
        user.username,
        user.display_name,
        _initial(user.display_name),
        avatar_path(user),
        user.status_message,
    )


def _refused(message: str) -> list[Any]:
    """A refused send: say why, and give the composer's files back to the tray."""
    return [
        rx.toast.error(message),
        rx.call_script("window.irisUploads && window.irisUploads.restore()"),
    ]


class ChatState(rx.State):
    """What one tab shows of the signed-in user's friends and conversations."""

    conversations: list[ConversationRow] = []
    friend_list: list[UserRow] = []
    incoming: list[RequestRow] = []
    outgoing: list[RequestRow] = []
    blocked: list[UserRow] = []
    search_query: str = ""
    chat_filter: str = ""  # the Chats tab's search-as-you-type over conversations and friends
    search_results: list[UserRow] = []
    sidebar_tab: str = "chats"

    active_username: str = ""
    active_display_name: str = ""
    active_avatar: str = ""
    active_status: str = ""
    my_display_name: str = ""
    my_avatar: str = ""
    my_status: str = ""
    messages: list[MessageRow] = []
    has_older: bool = False
    total_unread: int = 0
    timer_choice: str = "default"
    custom_timer: str = ""
    timer_after_read: bool = False
    friend_typing: bool = False
    typing_seq: int = 0
    active_presence: str = ""
    read_receipts: bool = True

    _user_id: int | None = None
    _tz: str = "UTC"
    _views: list[MessageView] = []

    @rx.var
    def chat_rows(self) -> list[ConversationRow]:
        """The Chats tab: every conversation, or while searching, the conversations and
        friends whose name or username contains the text (a friend without a conversation
        yet offers to start one). With no conversation yet, every friend is offered."""
        needle = self.chat_filter.strip().casefold()
        if not needle and self.conversations:
            return self.conversations

        def hit(username: str, name: str) -> bool:
            return needle in username.casefold() or needle in name.casefold()

        rows = [r for r in self.conversations if hit(r.username, r.display_name)]
        talking = {r.username.casefold() for r in self.conversations}
        rows += [
            ConversationRow(
                username=f.username,
                display_name=f.display_name,
                initial=f.initial,
                avatar=f.avatar,
                preview="Start a conversation",
            )
            for f in self.friend_list
            if f.username.casefold() not in talking and hit(f.username, f.display_name)
        ]
        return rows

    @rx.event
    def set_chat_filter(self, text: str) -> None:
        """Typing in the Chats tab's search box."""
        self.chat_filter = str(text)[:64]

    # ----------------------------------------------------------------- identity and loading

    async def _me(self) -> int:
        """The verified user id for this event (re-checked against the session table)."""
        session_state = await self.get_state(SessionState)
        identity = session_state.verified_identity()
        self._user_id = identity.user_id
        return identity.user_id

    def _zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self._tz)
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")

    def _clock_text(self, moment: datetime) -> str:
        return moment.astimezone(self._zone()).strftime("%H:%M")

    def _day_text(self, moment: datetime) -> str:
        from iris_reflex import clock

        zone = self._zone()
        day = moment.astimezone(zone).date()
        today = clock.now().astimezone(zone).date()
        if day == today:
            return "Today"
        if (today - day).days == 1:
            return "Yesterday"
        return day.strftime("%A, %d %B %Y")

    @rx.event
    async def load(self):  # type: ignore[no-untyped-def]
        """On page load: register this tab for live updates and fill the sidebar."""
        try:
            user_id = await self._me()
        except NotAuthenticated:
            return rx.redirect(LOGIN_ROUTE)
        await get_registry().add(user_id, self.router.session.client_token)
        with session_scope() as db:
            users.touch_last_seen(db, user_id=user_id)
            self.read_receipts = users.access_user(db, user_id).read_receipts
        spawn(presence.announce(user_id))
        self._refresh_sidebar()
        self._refresh_friends()
        return rx.call_script(
            "Intl.DateTimeFormat().resolvedOptions().timeZone", callback=ChatState.set_timezone
        )

    @rx.event
    def set_timezone(self, zone: str) -> None:
        """The browser's time zone, so times and day separators read as local time."""
        if isinstance(zone, str) and len(zone) < 64:
            self._tz = zone
            self._refresh_sidebar()
            self._reload_messages()

    def _refresh_sidebar(self) -> None:
        if self._user_id is None:
            return
        with session_scope() as db:
            summaries = conversations.list_conversations(db, actor_id=self._user_id)
        rows = []
        for s in summaries:
            last = s.last_message
            preview = ""
            if last is not None:
                text = last.body or media.describe(last.attachments)
                preview = ("You: " if last.sender_id == self._user_id else "") + text
            rows.append(
                ConversationRow(
                    username=s.friend.username,
                    display_name=s.friend.display_name,
                    initial=_initial(s.friend.display_name),
                    avatar=avatar_path(s.friend),
                    preview=preview[:80],
                    time=self._clock_text(s.last_activity) if last else "",
                    unread=s.unread,
                    active=_same_user(s.friend.username, self.active_username),
                )
            )
        self.conversations = rows
        self.total_unread = sum(r.unread for r in rows)

    def _refresh_friends(self) -> None:
        if self._user_id is None:
            return
        with session_scope() as db:
            listed = friends.list_friends(db, actor_id=self._user_id)
            requests = friends.list_requests(db, actor_id=self._user_id)
            blocked = friends.list_blocked(db, actor_id=self._user_id)
        self.blocked = [_user_row(u) for u in blocked]
        self.friend_list = [_user_row(u) for u in listed]
        self.incoming = [_request_row(r.id, r.requester) for r in requests.incoming]
        self.outgoing = [_request_row(r.id, r.addressee) for r in requests.outgoing]
        self._refresh_profiles(listed)

    def _refresh_profiles(self, listed: list[PublicUser]) -> None:
        """The signed-in user's own name and picture, and the open friend's (live edits)."""
        if self._user_id is None:
            return
        with session_scope() as db:
            me = users.Me.of(users.access_user(db, self._user_id))
        self.my_display_name = me.display_name
        self.my_avatar = avatar_path(me)
        self.my_status = me.status_message
        for friend in listed:
            if _same_user(friend.username, self.active_username):
                self.active_display_name = friend.display_name
                self.active_avatar = avatar_path(friend)
                self.active_status = friend.status_message

    def _rows(self, views: list[MessageView]) -> list[MessageRow]:
        """Display rows, oldest first, with a day separator before each new day; a message
        continues its sender's group when it follows theirs within ``GROUP_GAP``."""
        rows: list[MessageRow] = []
        previous_day = ""
        previous: MessageView | None = None
        for view in views:
            day = self._day_text(view.created_at)
            mine = view.sender_id == self._user_id
            grouped = (
                previous is not None
                and day == previous_day
                and previous.kind == view.kind == "text"
                and previous.sender_id == view.sender_id
                and view.created_at - previous.created_at <= GROUP_GAP
            )
            previous = view
            rows.append(
                MessageRow(
                    id=view.id,
                    mine=mine,
                    body=view.body,
                    time=self._clock_text(view.created_at),
                    day=day,
                    show_day=day != previous_day,
                    grouped=grouped,
                    status=("read" if view.read_at else "sent") if mine else "",
                    notice=view.kind != "text",
                    expires_ms=int(view.expires_at.timestamp() * 1000) if view.expires_at else 0,
                    waiting_for_read=bool(
                        getattr(view, "timer_mode", None) == "after_read" and not view.read_at
                    ),
                    attachments=[
                        _attachment_row(a)
                        for a in sorted(view.attachments, key=lambda a: _KIND_ORDER[a.kind])
                    ],
                )
            )
            previous_day = day
        return rows

    def _reload_messages(self) -> None:
        """Re-read the open conversation's newest messages (as many as are shown, at least a
        page, at most ``PAGE_MAX``), so expired and deleted ones drop out."""
        if self._user_id is None or not self.active_username:
            return
        limit = min(conversations.PAGE_MAX, max(conversations.PAGE_DEFAULT, len(self._views)))
        try:
            with session_scope() as db:
                page = conversations.list_messages(
                    db, actor_id=self._user_id, username=self.active_username, limit=limit
                )
        except DomainError:
            self._close_conversation()
            return
        self._views = list(reversed(page))
        self.has_older = self._older_exists()
        self.messages = self._rows(self._views)

    def _older_exists(self) -> bool:
        """Whether anything older than the oldest shown message is still visible."""
        if self._user_id is None or not self._views:
            return False
        with session_scope() as db:
            return bool(
                conversations.list_messages(
                    db,
                    actor_id=self._user_id,
                    username=self.active_username,
                    before_id=self._views[0].id,
                    limit=1,
                )
            )

    async def _refresh_presence(self) -> None:
        """ "online", or when the open conversation's friend was last seen."""
        if self._user_id is None or not self.active_username:
            self.active_presence = ""
            return
        try:
            with session_scope() as db:
                friend = friends.access_friend(
                    db, actor_id=self._user_id, username=self.active_username
                )
        except DomainError:
            self.active_presence = ""
            return
        assert friend.id is not None
        if await push.is_online(friend.id):
            self.active_presence = "online"
        elif friend.last_seen_at is not None:
            day = self._day_text(friend.last_seen_at)
            day = day.lower() if day in ("Today", "Yesterday") else f"on {day}"
            self.active_presence = f"last seen {day} at {self._clock_text(friend.last_seen_at)}"
        else:
            self.active_presence = ""

    def _close_conversation(self) -> None:
        self.friend_typing = False
        self.active_presence = ""
        self.active_username = ""
        self.active_display_name = ""
        self.messages = []
        self.has_older = False
        self._views = []

    # ------------------------------------------------------------------------ conversations

    @rx.event
    async def open_conversation(self, username: str):  # type: ignore[no-untyped-def]
        """Show a conversation with a friend and mark what arrived as read."""
        try:
            user_id = await self._me()
            with session_scope() as db:
                friend = friends.access_friend(db, actor_id=user_id, username=username)
        except NotAuthenticated:
            return rx.redirect(LOGIN_ROUTE)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self.active_username = friend.username
        self.active_display_name = friend.display_name
        public = PublicUser.of(friend)
        self.active_avatar = avatar_path(public)
        self.active_status = public.status_message
        self.friend_typing = False
        await self._refresh_presence()
        self._reload_messages()
        self._mark_read_and_notify()
        self._refresh_sidebar()
        return rx.call_script(
            "window.irisUploads && window.irisUploads.reset();"
            "setTimeout(() => { const el = document.getElementById('message-list');"
            " if (el) el.scrollTop = el.scrollHeight;"
            " document.getElementById('composer')?.focus(); }, 50)"
        )

    @rx.event
    def close_conversation(self):  # type: ignore[no-untyped-def]
        """Back to the sidebar (phone-sized screens); files not sent are discarded."""
        self._close_conversation()
        self._refresh_sidebar()
        return rx.call_script("window.irisUploads && window.irisUploads.reset()")

    def _mark_read_and_notify(self) -> None:
        if self._user_id is None or not self.active_username:
            return
        with session_scope() as db:
            receipt = conversations.mark_read(
                db, actor_id=self._user_id, username=self.active_username
            )
        if receipt is None:
            return
        spawn(notify.read_receipt(receipt, skip_token=self.router.session.client_token))

    @rx.event
    async def load_older(self):  # type: ignore[no-untyped-def]
        """Prepend the previous page (keyset on the oldest id shown, never OFFSET)."""
        if not self.active_username or not self._views:
            return None
        try:
            user_id = await self._me()
            with session_scope() as db:
                page = conversations.list_messages(
                    db,
                    actor_id=user_id,
                    username=self.active_username,
                    before_id=self._views[0].id,
                    limit=conversations.PAGE_DEFAULT,
                )
        except NotAuthenticated:
            return rx.redirect(LOGIN_ROUTE)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self._views = list(reversed(page)) + self._views
        self.has_older = self._older_exists()
        self.messages = self._rows(self._views)
        return None

    @rx.event
    async def send_message(self, form: dict[str, Any]):  # type: ignore[no-untyped-def]
        """Send the composer's text and finished uploads to the open conversation."""
        body = str(form.get("body", ""))
        raw_ids = [part for part in str(form.get("attachment_ids", "")).split(",") if part]
        attachment_ids = [_as_id(part) for part in raw_ids[:100]]
        if None in attachment_ids:
            return _refused("A file to send is no longer available: attach it again.")
        if not self.active_username:
            return _refused("Open a conversation first.")
        timer_seconds, timer_mode = self._picked_timer()
        if timer_seconds == -1:
            return _refused("Write the custom timer like 90s, 10m, 2h, 3d or 1w.")
        try:
            user_id = await self._me()
            with session_scope() as db:
                sent = conversations.check_send_message(
                    db,
                    actor_id=user_id,
                    username=self.active_username,
                    body=body,
                    timer_seconds=timer_seconds,
                    timer_mode=timer_mode,
                    attachment_ids=[i for i in attachment_ids if i is not None],
                )
        except NotAuthenticated:
            return rx.redirect(LOGIN_ROUTE)
        except DomainError as exc:
            return _refused(exc.message)
        self._reload_messages()
        self._refresh_sidebar()
        spawn(notify.message_sent(sent, skip_token=self.router.session.client_token))
        return rx.call_script(
            "window.irisUploads && window.irisUploads.clear();"
            "setTimeout(() => { const el = document.getElementById('message-list');"
            " if (el) el.scrollTop = el.scrollHeight; }, 30)"
        )

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
    def set_timer_choice(self, choice: str) -> None:
        """The composer's timer picker."""
        if choice in {value for value, _ in TIMER_CHOICES}:
            self.timer_choice = choice

    @rx.event
    def set_custom_timer(self, text: str) -> None:
        """The custom period typed next to the picker (e.g. "90s", "2h")."""
        self.custom_timer = str(text)[:16]

    @rx.event
    def set_timer_after_read(self, on: bool) -> None:
        """Start the countdown when the friend reads the message, not when it is sent."""
        self.timer_after_read = bool(on)

    @rx.event
    async def set_conversation_default(self):  # type: ignore[no-untyped-def]
        """Make the picker's timer this conversation's default, for both people."""
        seconds, mode = self._picked_timer()
        if self.timer_choice == "default" or seconds == -1:
            return rx.toast.error("Pick a timer (or Off) first, then set it as the default.")
        try:
            user_id = await self._me()
            with session_scope() as db:
                sent = conversations.set_conversation_timer(
                    db,
                    actor_id=user_id,
                    username=self.active_username,
                    seconds=seconds,
                    mode=mode or "from_send",
                )
        except NotAuthenticated:
            return rx.redirect(LOGIN_ROUTE)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self.timer_choice = "default"
        self._reload_messages()
        self._refresh_sidebar()
        spawn(notify.timer_set(sent, skip_token=self.router.session.client_token))
        return rx.toast.success(sent.message.body)

    @rx.event
    async def delete_message(self, message_id: int):  # type: ignore[no-untyped-def]
        """Delete one's own message for everyone."""
        try:
            user_id = await self._me()
            with session_scope() as db:
                view = conversations.delete_for_everyone(
                    db, actor_id=user_id, message_id=int(message_id)
                )
        except NotAuthenticated:
            return rx.redirect(LOGIN_ROUTE)
        except (DomainError, TypeError, ValueError):
            return rx.toast.error("That message cannot be deleted.")
        self._reload_messages()
        self._refresh_sidebar()
        spawn(notify.message_deleted(view, skip_token=self.router.session.client_token))
        return None

    # ----------------------------------------------------------------- applied by live pushes

    def _on_message_arrived(self) -> None:
        """A friend sent this user a message: refresh, and read it if it is on screen."""
        self.friend_typing = False
        self._reload_messages()
        if self.active_username:
            self._mark_read_and_notify()
        self._refresh_sidebar()

    def _on_conversation_changed(self) -> None:
        """Receipts, deletions or messages from this user's other tabs."""
        self._reload_messages()
        self._refresh_sidebar()

    def _on_friend_typing(self, username: str) -> None:
        """The friend is typing: show it; the page fades it out unless it is renewed."""
        if _same_user(username, self.active_username):
            self.friend_typing = True
            self.typing_seq += 1

    async def _on_presence_changed(self) -> None:
        await self._refresh_presence()

    def _on_friends_changed(self) -> None:
        """A request arrived, was answered, or a friendship ended."""
        self._refresh_friends()
        self._refresh_sidebar()
        if self.active_username and self.active_username not in {
            f.username for f in self.friend_list
        }:
            self._close_conversation()

    @rx.event
    async def typing(self, _text: str = ""):  # type: ignore[no-untyped-def]
        """The composer changed (throttled by the page): tell the friend's open tabs."""
        if not self.active_username:
            return None
        try:
            user_id = await self._me()
            with session_scope() as db:
                friend = friends.access_friend(db, actor_id=user_id, username=self.active_username)
                name = users.access_user(db, user_id).username
        except NotAuthenticated:
            return rx.redirect(LOGIN_ROUTE)
        except DomainError:
            return None

        def apply(chat: ChatState) -> None:
            chat._on_friend_typing(name)

        assert friend.id is not None
        spawn(push.push_to_user(friend.id, apply))
        return None

    @rx.event
    async def set_read_receipts(self, enabled: bool):  # type: ignore[no-untyped-def]
        """Send (and see) read receipts, or neither."""
        try:
            user_id = await self._me()
            with session_scope() as db:
                users.set_read_receipts(db, actor_id=user_id, enabled=bool(enabled))
                friend_ids = [f.id for f in friends.list_friends(db, actor_id=user_id)]
        except NotAuthenticated:
            return rx.redirect(LOGIN_ROUTE)
        self.read_receipts = bool(enabled)
        self._reload_messages()
        spawn(notify.conversation_changed(*friend_ids))
        return None

    # --------------------------------------------------------------------------- friends

    @rx.event
    def set_sidebar_tab(self, tab: str | list[str]) -> None:
        """Chats or Friends."""
        if isinstance(tab, str) and tab in ("chats", "friends"):
            self.sidebar_tab = tab

    @rx.event
    async def search(self, query: str):  # type: ignore[no-untyped-def]
        """Find people by username (exact match first, then a few by prefix)."""
        self.search_query = query[:32]
        if not self.search_query.strip():
            self.search_results = []
            return None
        try:
            user_id = await self._me()
            with session_scope() as db:
                found = friends.search_users(db, actor_id=user_id, query=self.search_query)
        except NotAuthenticated:
            return rx.redirect(LOGIN_ROUTE)
        self.search_results = [
            UserRow(u.username, u.display_name, _initial(u.display_name)) for u in found
        ]
        return None

    async def _friend_action(self, action: str, **kwargs: Any):  # type: ignore[no-untyped-def]
        try:
            user_id = await self._me()
            with session_scope() as db:
                outcome = getattr(friends, action)(db, actor_id=user_id, **kwargs)
        except NotAuthenticated:
            return None, rx.redirect(LOGIN_ROUTE)
        except DomainError as exc:
            return None, rx.toast.error(exc.message)
        self._refresh_friends()
        self._refresh_sidebar()
        others: set[int] = set()
        if isinstance(outcome, friends.RequestOutcome):
            others = {outcome.requester_id, outcome.addressee_id} - {user_id}
        elif isinstance(outcome, int):
            others = {outcome}
        token = self.router.session.client_token
        spawn(notify.friends_changed(*others))
        spawn(notify.friends_changed(user_id, skip_token=token))
        return outcome, None

    @rx.event
    async def send_request(self, username: str):  # type: ignore[no-untyped-def]
        """Ask a user to be friends."""
        outcome, error = await self._friend_action("send_request", username=username)
        if error is not None:
            return error
        self.search_query = ""
        self.search_results = []
        if outcome.status == "accepted":
            return rx.toast.success(f"You and {username} are now friends.")
        return rx.toast.success(f"Friend request sent to {username}.")

    @rx.event
    async def accept_request(self, request_id: int):  # type: ignore[no-untyped-def]
        """Accept an incoming request."""
        if (request := _as_id(request_id)) is None:
            return rx.toast.error("No such friend request.")
        _, error = await self._friend_action("accept_request", request_id=request)
        return error

    @rx.event
    async def decline_request(self, request_id: int):  # type: ignore[no-untyped-def]
        """Decline an incoming request."""
        if (request := _as_id(request_id)) is None:
            return rx.toast.error("No such friend request.")
        _, error = await self._friend_action("decline_request", request_id=request)
        return error

    @rx.event
    async def cancel_request(self, request_id: int):  # type: ignore[no-untyped-def]
        """Withdraw an outgoing request."""
        if (request := _as_id(request_id)) is None:
            return rx.toast.error("No such friend request.")
        _, error = await self._friend_action("cancel_request", request_id=request)
        return error

    @rx.event
    async def remove_friend(self, username: str):  # type: ignore[no-untyped-def]
        """End a friendship (the conversation closes on both sides)."""
        _, error = await self._friend_action("remove_friend", username=username)
        if error is None and _same_user(username, self.active_username):
            self._close_conversation()
        return error

    @rx.event
    async def block_user(self, username: str):  # type: ignore[no-untyped-def]
        """Block a user: no requests or messages from them; they are not told."""
        _, error = await self._friend_action("block", username=username)
        if error is None and _same_user(username, self.active_username):
            self._close_conversation()
        return error or rx.toast.success(f"{username} is blocked.")

    @rx.event
    async def unblock_user(self, username: str):  # type: ignore[no-untyped-def]
        """Lift a block (friendship is not restored: send a new request)."""
        _, error = await self._friend_action("unblock", username=username)
        return error or rx.toast.success(f"{username} is unblocked.")

    # ---------------------------------------------------------------------------- logout

    async def _forget_tab(self) -> None:
        """On logout: this tab stops receiving the user's pushes and shows nothing."""
        if self._user_id is not None:
            await get_registry().remove(self._user_id, self.router.session.client_token)
        self._user_id = None
        self._close_conversation()
        self.conversations = []
        self.friend_list = []
        self.incoming = []
        self.outgoing = []
        self.blocked = []
        self.search_results = []
