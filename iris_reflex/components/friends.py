"""The Friends tab: find people, answer requests, list and manage friends."""

from __future__ import annotations

import reflex as rx

from iris_reflex.components.chat import initial_avatar
from iris_reflex.state.conversation import ConversationState
from iris_reflex.state.friends import FriendsState
from iris_reflex.state.rows import RequestRow, UserRow


def _section(title: str, *children: rx.Component) -> rx.Component:
    return rx.vstack(
        rx.text(title, size="1", weight="bold", color_scheme="gray", text_transform="uppercase"),
        *children,
        spacing="2",
        width="100%",
    )


def _person(row: UserRow | RequestRow, *actions: rx.Component) -> rx.Component:
    return rx.hstack(
        initial_avatar(row.initial, "2", row.avatar),
        rx.vstack(
            rx.text(row.display_name, size="2", weight="medium", class_name="iris-ellipsis"),
            rx.text(
                "@",
                row.username,
                rx.cond(row.status != "", " · " + row.status, ""),
                size="1",
                color_scheme="gray",
                class_name="iris-ellipsis",
            ),
            spacing="0",
            flex="1",
            min_width="0",
        ),
        *actions,
        align="center",
        spacing="2",
        width="100%",
        data_username=row.username,
    )


def _search_result(row: UserRow) -> rx.Component:
    return _person(
        row,
        rx.button(
            "Add",
            size="1",
            on_click=FriendsState.send_request(row.username),
            aria_label=f"Send friend request to {row.username}",
        ),
    )


def _incoming(row: RequestRow) -> rx.Component:
    return _person(
        row,
        rx.button(
            "Accept",
            size="1",
            on_click=FriendsState.accept_request(row.id),
            aria_label=f"Accept {row.username}",
        ),
        rx.button(
            "Decline",
            size="1",
            variant="soft",
            color_scheme="gray",
            on_click=FriendsState.decline_request(row.id),
            aria_label=f"Decline {row.username}",
        ),
    )


def _outgoing(row: RequestRow) -> rx.Component:
    return _person(
        row,
        rx.button(
            "Cancel",
            size="1",
            variant="soft",
            color_scheme="gray",
            on_click=FriendsState.cancel_request(row.id),
            aria_label=f"Cancel request to {row.username}",
        ),
    )


def _friend(row: UserRow) -> rx.Component:
    return _person(
        row,
        rx.icon_button(
            rx.icon("message-circle", size=16),
            size="1",
            variant="soft",
            on_click=ConversationState.open_conversation(row.username),
            aria_label=f"Message {row.username}",
        ),
        rx.dropdown_menu.root(
            rx.dropdown_menu.trigger(
                rx.icon_button(
                    rx.icon("ellipsis-vertical", size=16),
                    size="1",
                    variant="ghost",
                    color_scheme="gray",
                    aria_label=f"More for {row.username}",
                ),
            ),
            rx.dropdown_menu.content(
                rx.dropdown_menu.item(
                    "Remove friend", on_click=FriendsState.remove_friend(row.username)
                ),
                rx.dropdown_menu.item(
                    "Block", color="red", on_click=FriendsState.block_user(row.username)
                ),
            ),
        ),
    )


def _blocked(row: UserRow) -> rx.Component:
    return _person(
        row,
        rx.button(
            "Unblock",
            size="1",
            variant="soft",
            color_scheme="gray",
            on_click=FriendsState.unblock_user(row.username),
            aria_label=f"Unblock {row.username}",
        ),
    )


def friends_panel() -> rx.Component:
    """Search, requests and the friend list, in one scrollable column."""
    return rx.vstack(
        rx.input(
            rx.input.slot(rx.icon("search", size=16)),
            placeholder="Find people by username",
            aria_label="Find people by username",
            value=FriendsState.search_query,
            on_change=FriendsState.search.debounce(250),
            id="friend-search",
            width="100%",
        ),
        rx.cond(
            FriendsState.search_results.length() > 0,
            _section("People", rx.foreach(FriendsState.search_results, _search_result)),
        ),
        rx.cond(
            FriendsState.incoming.length() > 0,
            _section("Requests", rx.foreach(FriendsState.incoming, _incoming)),
        ),
        rx.cond(
            FriendsState.outgoing.length() > 0,
            _section("Sent", rx.foreach(FriendsState.outgoing, _outgoing)),
        ),
        _section(
            "Friends",
            rx.cond(
                FriendsState.friend_list.length() > 0,
                rx.foreach(FriendsState.friend_list, _friend),
                rx.text(
                    "No friends yet. Find someone by their username above.",
                    size="2",
                    color_scheme="gray",
                ),
            ),
        ),
        rx.cond(
            FriendsState.blocked.length() > 0,
            _section("Blocked", rx.foreach(FriendsState.blocked, _blocked)),
        ),
        spacing="4",
        padding="1em",
        width="100%",
        overflow_y="auto",
        flex="1",
    )
