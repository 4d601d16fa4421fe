"""The signed-in home page: the sidebar (chats, friends) and the conversation pane."""

from __future__ import annotations

import reflex as rx

from iris_reflex.components.brand import logo
from iris_reflex.components.chat import (
    COUNTDOWN_SCRIPT,
    conversation_pane,
    conversation_row,
    initial_avatar,
)
from iris_reflex.components.friends import friends_panel
from iris_reflex.components.media import MEDIA_STYLE, uploads_script
from iris_reflex.pages.settings import settings_link
from iris_reflex.state.conversation import ConversationState
from iris_reflex.state.friends import FriendsState
from iris_reflex.state.session import SessionState
from iris_reflex.state.settings import SettingsState
from iris_reflex.state.sidebar import SidebarState

STYLE = """
.iris-row { all: unset; box-sizing: border-box; display: block; width: 100%; cursor: pointer;
  padding: 0.6em 1em; border-radius: 10px; }
.iris-row:hover { background: var(--gray-a3); }
.iris-row:focus-visible, button:focus-visible { outline: 2px solid var(--accent-8);
  outline-offset: 1px; }
.iris-row-active { background: var(--accent-a4); }
.iris-ellipsis { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
/* "is typing…" fades out 5 s after the last keystroke unless a new one re-mounts it. */
.iris-typing { animation: iris-typing-fade 5s forwards; }
@keyframes iris-typing-fade { 0%, 80% { opacity: 1; } 100% { opacity: 0; } }
.iris-sidebar { width: 340px; min-width: 340px; }
/* A sender's consecutive messages sit close together, as one group. */
.message { margin-top: 6px; }
.message-grouped { margin-top: -2px; }
/* Phone-sized screens show one pane: the sidebar, or the open conversation. */
@media (max-width: 767px) {
  .iris-sidebar { width: 100%; min-width: 0; }
  .iris-shell-active .iris-sidebar { display: none !important; }
  .iris-shell:not(.iris-shell-active) .iris-main { display: none !important; }
}
"""


def _chats_list() -> rx.Component:
    search = rx.box(
        rx.input(
            rx.input.slot(rx.icon("search", size=14)),
            placeholder="Search chats and friends",
            value=SidebarState.chat_filter,
            on_change=SidebarState.set_chat_filter.debounce(150),
            aria_label="Search chats and friends",
            type="search",
            size="2",
            width="100%",
        ),
        padding="0.5em 1em 0",
        width="100%",
    )
    found = rx.cond(
        SidebarState.chat_rows.length() > 0,
        rx.vstack(
            rx.foreach(SidebarState.chat_rows, conversation_row),
            spacing="1",
            padding="0.5em",
            width="100%",
            overflow_y="auto",
            flex="1",
        ),
        rx.center(
            rx.text("No chat or friend matches.", size="2", color_scheme="gray"),
            padding="2em 1em",
            width="100%",
        ),
    )
    return rx.cond(
        SidebarState.has_conversations | (FriendsState.friend_list.length() > 0),
        rx.vstack(search, found, spacing="0", width="100%", flex="1", min_height="0"),
        rx.center(
            rx.vstack(
                rx.icon("messages-square", size=32, color=rx.color("gray", 9)),
                rx.text("No conversations yet", weight="medium"),
                rx.text(
                    "Add a friend in the Friends tab, then say hello.",
                    size="2",
                    color_scheme="gray",
                    text_align="center",
                ),
                rx.button(
                    "Find friends",
                    variant="soft",
                    size="2",
                    on_click=SidebarState.set_sidebar_tab("friends"),
                ),
                align="center",
                spacing="2",
                max_width="240px",
            ),
            flex="1",
            width="100%",
        ),
    )


def _tabs() -> rx.Component:
    return rx.segmented_control.root(
        rx.segmented_control.item(
            rx.hstack(
                rx.text("Chats"),
                rx.cond(
                    SidebarState.total_unread > 0,
                    rx.badge(SidebarState.total_unread, radius="full", size="1"),
                ),
                spacing="1",
                align="center",
            ),
            value="chats",
        ),
        rx.segmented_control.item(
            rx.hstack(
                rx.text("Friends"),
                rx.cond(
                    FriendsState.incoming.length() > 0,
                    rx.badge(
                        FriendsState.incoming.length(),
                        radius="full",
                        size="1",
                        color_scheme="red",
                        class_name="incoming-count",
                    ),
                ),
                spacing="1",
                align="center",
            ),
            value="friends",
        ),
        value=SidebarState.sidebar_tab,
        on_change=SidebarState.set_sidebar_tab,
        width="calc(100% - 2em)",
        margin="0.75em 1em 0.25em",
        aria_label="Sidebar section",
    )


def _my_name() -> rx.Var:
    """The signed-in user's name, live after an edit in Settings or another tab."""
    return SessionState.display_name


def _sidebar() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            logo("5"),
            rx.spacer(),
            # Switches and remembers the theme for this user (Settings has "follow system").
            rx.icon_button(
                rx.color_mode_cond(light=rx.icon("moon", size=18), dark=rx.icon("sun", size=18)),
                on_click=SettingsState.set_theme(rx.color_mode_cond(light="dark", dark="light")),
                size="2",
                variant="ghost",
                color_scheme="gray",
                aria_label="Toggle dark mode",
            ),
            width="100%",
            align="center",
            padding="1em",
        ),
        rx.separator(size="4"),
        _tabs(),
        rx.cond(SidebarState.sidebar_tab == "friends", friends_panel(), _chats_list()),
        rx.separator(size="4"),
        rx.hstack(
            initial_avatar(_my_name().to(str)[0].upper(), "3", SessionState.avatar),
            rx.vstack(
                rx.text(
                    _my_name(),
                    weight="bold",
                    size="2",
                    id="signed-in-name",
                    trim="both",
                ),
                rx.text(
                    "@",
                    SessionState.username,
                    size="1",
                    color_scheme="gray",
                    id="signed-in-username",
                    trim="both",
                ),
                spacing="1",
                min_width="0",
            ),
            rx.spacer(),
            settings_link(),
            rx.tooltip(
                rx.icon_button(
                    rx.icon("log-out", size=18),
                    on_click=SessionState.log_out,
                    variant="soft",
                    color_scheme="gray",
                    aria_label="Log out",
                    id="log-out",
                ),
                content="Log out",
            ),
            width="100%",
            align="center",
            padding="1em",
        ),
        spacing="0",
        height="100vh",
        class_name="iris-sidebar",
        border_right=f"1px solid {rx.color('gray', 5)}",
        background=rx.color("gray", 2),
        as_="nav",
        aria_label="Conversations and friends",
    )


def _empty_pane() -> rx.Component:
    return rx.center(
        rx.vstack(
            rx.icon("lock", size=40, color=rx.color("accent", 9)),
            rx.heading("Your conversations are private", size="5", as_="h1"),
            rx.text(
                "Pick a conversation to read it. Only you and your friend can see what you send.",
                color_scheme="gray",
                text_align="center",
            ),
            align="center",
            spacing="3",
            max_width="420px",
            padding="2em",
        ),
        flex="1",
        height="100vh",
        background=rx.color("accent", 1),
    )


def _main() -> rx.Component:
    return rx.box(
        rx.cond(ConversationState.active_username != "", conversation_pane(), _empty_pane()),
        flex="1",
        min_width="0",
        height="100vh",
        class_name="iris-main",
        as_="main",
    )


def home_page() -> rx.Component:
    """The shell, rendered only once the session is verified (no flash of private UI)."""
    return rx.fragment(
        rx.el.style(STYLE + MEDIA_STYLE),
        rx.script(COUNTDOWN_SCRIPT),
        rx.script(uploads_script()),
        rx.cond(
            SessionState.signed_in,
            rx.hstack(
                _sidebar(),
                _main(),
                spacing="0",
                width="100%",
                height="100vh",
                class_name=rx.cond(
                    ConversationState.active_username != "",
                    "iris-shell iris-shell-active",
                    "iris-shell",
                ),
            ),
            rx.center(rx.spinner(size="3"), height="100vh", aria_label="Loading"),
        ),
    )
