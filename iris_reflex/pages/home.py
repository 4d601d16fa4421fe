"""The signed-in home page: the chat shell (sidebar and conversation pane)."""

from __future__ import annotations

import reflex as rx

from iris_reflex.components.brand import avatar, logo
from iris_reflex.state.session import SessionState


def _sidebar() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            logo("5"),
            rx.spacer(),
            rx.color_mode.button(size="2", variant="ghost", aria_label="Toggle dark mode"),
            width="100%",
            align="center",
            padding="1em",
        ),
        rx.separator(size="4"),
        rx.center(
            rx.vstack(
                rx.icon("messages-square", size=32, color=rx.color("gray", 9)),
                rx.text("No conversations yet", weight="medium"),
                rx.text(
                    "When you and a friend start talking, the conversation shows here.",
                    size="2",
                    color_scheme="gray",
                    text_align="center",
                ),
                align="center",
                spacing="2",
                max_width="240px",
            ),
            flex="1",
            width="100%",
        ),
        rx.separator(size="4"),
        rx.hstack(
            avatar(SessionState.display_name, "3"),
            rx.vstack(
                rx.text(
                    SessionState.display_name,
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
        width=["100%", "100%", "320px"],
        min_width=["0", "0", "320px"],
        border_right=f"1px solid {rx.color('gray', 5)}",
        background=rx.color("gray", 2),
        as_="nav",
        aria_label="Conversations",
    )


def _empty_pane() -> rx.Component:
    return rx.center(
        rx.vstack(
            rx.icon("lock", size=40, color=rx.color("accent", 9)),
            rx.heading("Your conversations are private", size="5", as_="h1"),
            rx.text(
                "Pick a conversation to read it. Only you and your friend can see what you "
                "send, and timed messages vanish for good.",
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
        display=["none", "none", "flex"],
        background=rx.color("accent", 1),
        as_="main",
    )


def home_page() -> rx.Component:
    """The shell, rendered only once the session is verified (no flash of private UI)."""
    return rx.cond(
        SessionState.signed_in,
        rx.hstack(_sidebar(), _empty_pane(), spacing="0", width="100%", height="100vh"),
        rx.center(rx.spinner(size="3"), height="100vh", aria_label="Loading"),
    )
