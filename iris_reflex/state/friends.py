"""The Friends tab of the sidebar: friends, requests, blocks, and finding people."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reflex as rx
from sqlmodel import Session

from iris_reflex.actions import friends as friend_actions
from iris_reflex.db import in_session
from iris_reflex.services import blocks, friend_requests, friends
from iris_reflex.services.friend_requests import RequestOutcome
from iris_reflex.services.users import PublicUser
from iris_reflex.state import rows
from iris_reflex.state.conversation import ConversationState
from iris_reflex.state.guard import guarded
from iris_reflex.state.rows import RequestRow, UserRow
from iris_reflex.state.session import SessionState
from iris_reflex.state.sidebar import SidebarState

SEARCH_MAX = 32


def _lists(
    db: Session, user_id: int
) -> tuple[list[PublicUser], friend_requests.Requests, list[PublicUser]]:
    return (
        friends.list_friends(db, actor_id=user_id),
        friend_requests.list_requests(db, actor_id=user_id),
        blocks.list_blocked(db, actor_id=user_id),
    )


class FriendsState(SessionState):
    """What the Friends tab shows."""

    friend_list: list[UserRow] = []
    incoming: list[RequestRow] = []
    outgoing: list[RequestRow] = []
    blocked: list[UserRow] = []
    search_query: str = ""
    search_results: list[UserRow] = []

    @rx.event
    @guarded
    async def load(self) -> None:
        """On load of the home page: the friends tab's lists."""
        await self._signed_in()
        await self._refresh()

    async def _refresh(self) -> None:
        """Re-read friends, requests and blocks; the open friend's header follows, and a
        conversation with someone who is no longer a friend closes."""
        if self._user_id is None:
            return
        listed, requests, blocked = await in_session(_lists, self._user_id)
        self.blocked = [rows.user_row(u) for u in blocked]
        self.friend_list = [rows.user_row(u) for u in listed]
        self.incoming = [rows.request_row(r.id, r.requester) for r in requests.incoming]
        self.outgoing = [rows.request_row(r.id, r.addressee) for r in requests.outgoing]
        conversation = await self.get_state(ConversationState)
        if conversation.active_username and not conversation._refresh_friend(listed):
            await conversation._close()

    @rx.event
    @guarded
    async def search(self, query: str) -> None:
        """Find people by username (exact match first, then a few by prefix)."""
        user_id = await self._signed_in()
        self.search_query = str(query)[:SEARCH_MAX]
        if not self.search_query.strip():
            self.search_results = []
            return
        found = await in_session(friends.search_users, actor_id=user_id, query=self.search_query)
        self.search_results = [
            UserRow(u.username, u.display_name, rows.initial(u.display_name)) for u in found
        ]

    async def _act(self, action: Callable[..., Any], **kwargs: Any) -> Any:
        """Run a friend action as the verified user; this tab's lists follow at once (the
        other tabs and the other person hear through the live layer)."""
        user_id = await self._signed_in()
        outcome = await in_session(action, actor_id=user_id, skip_token=self._token(), **kwargs)
        await self._refresh()
        sidebar = await self.get_state(SidebarState)
        await sidebar._refresh(with_friends=True)
        await self._refresh_me()
        return outcome

    async def _close_if_open(self, username: str) -> None:
        conversation = await self.get_state(ConversationState)
        if rows.same_user(username, conversation.active_username):
            await conversation._close()

    @rx.event
    @guarded
    async def send_request(self, username: str):
        """Ask a user to be friends."""
        outcome: RequestOutcome = await self._act(
            friend_actions.send_request, username=str(username)
        )
        self.search_query = ""
        self.search_results = []
        if outcome.status == "accepted":
            return rx.toast.success(f"You and {username} are now friends.")
        return rx.toast.success(f"Friend request sent to {username}.")

    async def _answer(self, action: Callable[..., Any], request_id: Any) -> Any:
        if (request := rows.as_id(request_id)) is None:
            await self._signed_in()
            return rx.toast.error(friend_requests.NO_SUCH_REQUEST)
        await self._act(action, request_id=request)
        return None

    @rx.event
    @guarded
    async def accept_request(self, request_id: int):
        """Accept an incoming request."""
        return await self._answer(friend_actions.accept_request, request_id)

    @rx.event
    @guarded
    async def decline_request(self, request_id: int):
        """Decline an incoming request."""
        return await self._answer(friend_actions.decline_request, request_id)

    @rx.event
    @guarded
    async def cancel_request(self, request_id: int):
        """Withdraw an outgoing request."""
        return await self._answer(friend_actions.cancel_request, request_id)

    @rx.event
    @guarded
    async def remove_friend(self, username: str) -> None:
        """End a friendship (the conversation closes on both sides)."""
        await self._act(friend_actions.remove_friend, username=str(username))
        await self._close_if_open(str(username))

    @rx.event
    @guarded
    async def block_user(self, username: str):
        """Block a user: no requests or messages from them; they are not told."""
        await self._act(friend_actions.block, username=str(username))
        await self._close_if_open(str(username))
        return rx.toast.success(f"{username} is blocked.")

    @rx.event
    @guarded
    async def unblock_user(self, username: str):
        """Lift a block (friendship is not restored: send a new request)."""
        await self._act(friend_actions.unblock, username=str(username))
        return rx.toast.success(f"{username} is unblocked.")

    def _clear(self) -> None:
        self.friend_list = []
        self.incoming = []
        self.outgoing = []
        self.blocked = []
        self.search_query = ""
        self.search_results = []
