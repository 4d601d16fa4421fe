"""The settings page, and the two pieces other pages borrow: the theme sync and the link."""

from __future__ import annotations

import reflex as rx
from reflex.style import set_color_mode

from iris_reflex.components.settings import (
    delete_section,
    passkeys_section,
    password_section,
    privacy_section,
    profile_section,
    sessions_section,
    theme_section,
    timer_section,
    two_step_section,
)
from iris_reflex.state.session import SessionState
from iris_reflex.state.settings import THEMES, SettingsState

STYLE = """
.iris-settings a:focus-visible, .iris-settings button:focus-visible,
.iris-settings input:focus-visible, .iris-settings [role="radio"]:focus-visible,
.iris-settings [role="switch"]:focus-visible, .iris-settings [role="combobox"]:focus-visible {
  outline: 2px solid var(--accent-8); outline-offset: 2px; }
.iris-settings .rt-RadioCardsItem:focus-visible { outline: 2px solid var(--accent-8);
  outline-offset: 2px; }
.iris-code { font-family: var(--code-font-family); letter-spacing: 0.04em; }
.iris-choice { display: inline-flex; align-items: center; gap: 0.5em; cursor: pointer;
  padding: 0.4em 0.2em; }
"""


def theme_sync() -> rx.Component:
    """Applies the signed-in user's remembered theme on the page that renders it.

    The first box asks the server for the theme when it mounts. Then one box per theme: the
    one matching ``theme`` is mounted (again whenever the theme changes) and its ``on_mount``
    hands the value to Reflex's colour-mode provider, which follows ``prefers-color-scheme``
    for "system" and remembers the choice in this browser for the next page load.
    """
    return rx.fragment(
        rx.box(on_mount=SettingsState.load_theme, display="none"),
        rx.match(
            SettingsState.theme,
            *[
                (value, rx.box(on_mount=set_color_mode(value), display="none"))
                for value, _ in THEMES
            ],
            rx.fragment(),
        ),
    )


def settings_link() -> rx.Component:
    """The chat sidebar's way to the settings page (it also applies the user's theme)."""
    return rx.fragment(
        theme_sync(),
        rx.tooltip(
            rx.icon_button(
                rx.link(
                    rx.icon("settings", size=18),
                    href="/settings",
                    aria_label="Settings",
                    id="settings-link",
                    color_scheme="gray",
                    underline="none",
                ),
                as_child=True,
                variant="soft",
                color_scheme="gray",
            ),
            content="Settings",
        ),
    )


def _content() -> rx.Component:
    header = rx.hstack(
        rx.tooltip(
            rx.icon_button(
                rx.link(
                    rx.icon("arrow-left", size=18),
                    href="/",
                    aria_label="Back to chats",
                    color_scheme="gray",
                    underline="none",
                ),
                as_child=True,
                variant="ghost",
                color_scheme="gray",
            ),
            content="Back to chats",
        ),
        rx.heading("Settings", size="6", as_="h1"),
        align="center",
        spacing="3",
        width="100%",
    )
    return rx.vstack(
        header,
        rx.text("Signed in as @", SessionState.username, size="2", color_scheme="gray"),
        profile_section(),
        theme_section(),
        privacy_section(),
        timer_section(),
        password_section(),
        passkeys_section(),
        two_step_section(),
        sessions_section(),
        delete_section(),
        spacing="4",
        width="100%",
        max_width="640px",
        margin_x="auto",
        padding=["1em", "1.5em", "2em"],
        as_="main",
    )


def settings_page() -> rx.Component:
    """Shown only once the session is verified and the choices are loaded."""
    return rx.box(
        rx.el.style(STYLE),
        theme_sync(),
        rx.cond(
            SessionState.signed_in & SettingsState.loaded,
            _content(),
            rx.center(rx.spinner(size="3"), height="100vh", aria_label="Loading"),
        ),
        class_name="iris-settings",
        min_height="100vh",
        background=rx.color("gray", 2),
    )
