"""The Chats tab of the sidebar: one row per conversation, search-as-you-type, unread total."""

from __future__ import annotations

import dataclasses

import reflex as rx

from iris_reflex.db import in_session
from iris_reflex.live import outbox, presence, push
from iris_reflex.live.events import PresenceChanged
from iris_reflex.services import conversations, friends, pairs, users
from iris_reflex.services.conversations import ConversationSummary
from iris_reflex.services.message_views import MessageView
from iris_reflex.state import rows
from iris_reflex.state.guard import guarded
from iris_reflex.state.rows import ConversationRow
from iris_reflex.state.session import SessionState

FILTER_MAX = 64


class SidebarState(SessionState):
    """What the Chats tab shows. All conversation rows stay server-side; the browser gets
    only the rows the filter lets through."""

    chat_rows: list[ConversationRow] = []
    chat_filter: str = ""
    has_conversations: bool = False
    total_unread: int = 0
    sidebar_tab: str = "chats"  # or "friends"

    # Tuples, replaced whole: Reflex wraps a list in a proxy on every read, and a new
    # message reads these in every tab it reaches (py-spy: 2-3 % of a busy worker).
    _summaries: tuple[ConversationSummary, ...] = ()  # newest activity first, as read
    _conversations: tuple[ConversationRow, ...] = ()  # one per summary, in the same order
    _friends: tuple[rows.UserRow, ...] = ()  # offered by the filter when there is no chat
    _friend_users: tuple[users.PublicUser, ...] = ()  # the same friends, for a first message
    _active_username: str = ""  # the open conversation, marked in its row

    @rx.event
    @guarded
    async def load(self):
        """On load of the home page: register this tab for live updates and fill the sidebar
        (the friends tab loads its own lists)."""
        user_id = await self._signed_in()
        await push.register_tab(user_id, self._token())
        presence.tab_opened(user_id, self._token())
        await in_session(users.touch_last_seen, user_id=user_id)
        outbox.publish(PresenceChanged(user_id))
        await self._refresh(with_friends=True)

    @rx.event
    @guarded
    async def set_chat_filter(self, text: str) -> None:
        """Typing in the Chats tab's search box."""
        await self._signed_in()
        self.chat_filter = str(text)[:FILTER_MAX]
        self._show()

    @rx.event
    @guarded
    async def set_sidebar_tab(self, tab: str | list[str]) -> None:
        """Chats or Friends."""
        await self._signed_in()
        if isinstance(tab, str) and tab in ("chats", "friends"):
            self.sidebar_tab = tab

    def _set_active(self, username: str) -> None:
        self._active_username = username
        self._build_rows()

    def _build_rows(self) -> None:
        """The rows the Chats tab shows, from the conversations as the service read them."""
        viewer, tz = self._user_id, rows.zone(self._tz)
        self._conversations = tuple(
            rows.conversation_row(s, viewer_id=viewer, active_username=self._active_username, tz=tz)
            for s in self._summaries
            if viewer is not None
        )
        self.total_unread = sum(r.unread for r in self._conversations)
        self._show()

    def _message_shown(self, view: MessageView, *, read: bool) -> bool:
        """A new message (sent by this tab, or handed over by a push) updates its
        conversation's row alone: preview, time, unread count, first place; the first
        message of a conversation adds its row from the friend list. ``read`` says the user
        has it on screen (and it was marked read). False when neither is possible (a friend
        this tab has not heard of yet): then the caller re-reads the list."""
        if self._user_id is None:
            return False
        mine = view.sender_id == self._user_id
        friend_id = pairs.other(view.sender_id, view.recipient_id, me=self._user_id)
        index = next((i for i, s in enumerate(self._summaries) if s.friend.id == friend_id), None)
        if index is None:
            friend = next((f for f in self._friend_users if f.id == friend_id), None)
            if friend is None:
                return False
            first = ConversationSummary(
                conversation_id=view.conversation_id,
                friend=friend,
                last_message=view,
                unread=0 if mine or read else 1,
                last_activity=view.created_at,
            )
            self._place(first, self._summaries, self._conversations, at=0)
            return True
        summary = self._summaries[index]
        if mine:
            unread = summary.unread
        else:
            unread = 0 if read else summary.unread + 1
        newest = summary.last_message is None or summary.last_message.id < view.id
        updated = dataclasses.replace(
            summary,
            last_message=view if newest else summary.last_message,
            last_activity=view.created_at if newest else summary.last_activity,
            unread=unread,
        )
        summaries = self._summaries[:index] + self._summaries[index + 1 :]
        conversations = self._conversations[:index] + self._conversations[index + 1 :]
        self._place(updated, summaries, conversations, at=0 if newest else index)
        return True

    def _place(
        self,
        summary: ConversationSummary,
        summaries: tuple[ConversationSummary, ...],
        conversations: tuple[ConversationRow, ...],
        *,
        at: int,
    ) -> None:
        """Put one conversation's summary and its freshly built row at ``at``: the other
        rows are kept as built (a message costs one row, however many conversations)."""
        assert self._user_id is not None
        row = rows.conversation_row(
            summary,
            viewer_id=self._user_id,
            active_username=self._active_username,
            tz=rows.zone(self._tz),
        )
        self._summaries = (*summaries[:at], summary, *summaries[at:])
        self._conversations = (*conversations[:at], row, *conversations[at:])
        self.total_unread = sum(r.unread for r in self._conversations)
        self._show()

    async def _refresh(self, *, with_friends: bool = False) -> None:
        """Re-read the conversations (a fixed few statements, however many there are), and
        the friends the filter offers when they may have changed."""
        if self._user_id is None:
            return
        self._summaries = tuple(
            await in_session(conversations.list_conversations, actor_id=self._user_id)
        )
        if with_friends:
            listed = await in_session(friends.list_friends, actor_id=self._user_id)
            self._friend_users = tuple(listed)
            self._friends = tuple(rows.user_row(u) for u in listed)
        self._build_rows()

    def _show(self) -> None:
        """Every conversation, or while searching, the conversations and friends whose name
        or username contains the text (a friend without a conversation yet offers to start
        one). With no conversation yet, every friend is offered."""
        self.has_conversations = bool(self._conversations)
        needle = self.chat_filter.strip().casefold()
        if not needle and self._conversations:
            self.chat_rows = list(self._conversations)
            return

        def hit(username: str, name: str) -> bool:
            return needle in username.casefold() or needle in name.casefold()

        shown = [r for r in self._conversations if hit(r.username, r.display_name)]
        talking = {r.username.casefold() for r in self._conversations}
        shown += [
            ConversationRow(
                username=f.username,
                display_name=f.display_name,
                initial=f.initial,
                avatar=f.avatar,
                preview="Start a conversation",
            )
            for f in self._friends
            if f.username.casefold() not in talking and hit(f.username, f.display_name)
        ]
        self.chat_rows = shown

    def _clear(self) -> None:
        self.chat_rows = []
        self.chat_filter = ""
        self.has_conversations = False
        self.total_unread = 0
        self._summaries = ()
        self._conversations = ()
        self._friends = ()
        self._friend_users = ()
        self._active_username = ""
