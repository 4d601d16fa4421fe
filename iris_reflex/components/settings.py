"""The settings page's sections: profile, theme, receipts, default timer, password, sessions,
and deleting the account. Layout only: every change goes through ``SettingsState``."""

from __future__ import annotations

import reflex as rx

from iris_reflex.components.auth_card import labelled_input
from iris_reflex.components.chat import initial_avatar
from iris_reflex.services.users import PASSWORD_MAX, PASSWORD_MIN
from iris_reflex.state.session import backend_base_js
from iris_reflex.state.settings import (
    DEFAULT_TIMER_CHOICES,
    DELETE_FIELD,
    THEMES,
    SettingsState,
)

_THEME_ICONS = ("sun", "moon", "monitor")


def _section(title: str, description: str, *children: rx.Component, **props: object):
    return rx.card(
        rx.vstack(
            rx.heading(title, size="4", as_="h2"),
            rx.text(description, size="2", color_scheme="gray"),
            *children,
            spacing="3",
            width="100%",
        ),
        size="3",
        width="100%",
        as_="section",
        **props,
    )


# Uploads the chosen picture with the session cookie, then asks the state to show it.
PICTURE_SCRIPT = (
    "(() => { if (window.__irisPicture) return; window.__irisPicture = true;"
    " const base = () => " + backend_base_js() + ";"
    " document.addEventListener('change', async (e) => {"
    "  if (e.target.id !== 'picture-picker' || !e.target.files.length) return;"
    "  const file = e.target.files[0]; e.target.value = '';"
    "  const error = document.getElementById('picture-error'); error.textContent = '';"
    "  const response = await fetch(base() + '/api/me/avatar',"
    "   {method: 'PUT', credentials: 'include', body: file});"
    "  if (!response.ok) { let detail = 'The picture could not be uploaded.';"
    "   try { detail = (await response.json()).detail || detail; } catch (_) {}"
    "   error.textContent = detail; return; }"
    "  document.getElementById('picture-refresh').click();"
    " }); })()"
)


def profile_section() -> rx.Component:
    picture = rx.hstack(
        initial_avatar(SettingsState.display_name.to(str)[0].upper(), "6", SettingsState.avatar),
        rx.vstack(
            rx.el.input(
                type="file",
                id="picture-picker",
                accept="image/jpeg,image/png,image/gif,image/webp",
                hidden=True,
                tab_index=-1,
                aria_label="Choose a profile picture",
            ),
            rx.button(
                rx.icon("image-up", size=16),
                "Change picture",
                variant="soft",
                on_click=rx.call_script("document.getElementById('picture-picker').click()"),
            ),
            rx.cond(
                SettingsState.avatar != "",
                rx.button(
                    "Remove picture",
                    variant="ghost",
                    color_scheme="gray",
                    on_click=SettingsState.remove_picture,
                ),
            ),
            rx.button(
                id="picture-refresh",
                on_click=SettingsState.picture_changed,
                display="none",
                aria_hidden="true",
                tab_index=-1,
            ),
            # Filled by the upload script; announced when it changes (not a role=alert while
            # empty, which would be one more "alert" on the page).
            rx.text(id="picture-error", aria_live="assertive", size="2", color_scheme="red"),
            spacing="2",
            align="start",
        ),
        spacing="4",
        align="center",
    )
    form = rx.form(
        rx.vstack(
            labelled_input(
                "Display name",
                "display_name",
                default_value=SettingsState.display_name,
                max_length=64,
                required=True,
            ),
            labelled_input(
                "Status",
                "status_message",
                default_value=SettingsState.status_message,
                max_length=140,
                placeholder="What are you up to?",
            ),
            rx.cond(
                SettingsState.profile_error,
                rx.callout(
                    SettingsState.profile_error,
                    icon="circle-alert",
                    color_scheme="red",
                    role="alert",
                    width="100%",
                ),
            ),
            rx.button("Save profile", type="submit", size="3"),
            spacing="3",
            width="100%",
            align="start",
        ),
        on_submit=SettingsState.save_profile,
        width="100%",
    )
    return _section(
        "Profile",
        "Your friends see your picture, name and status; nobody else sees the picture.",
        rx.script(PICTURE_SCRIPT),
        picture,
        form,
    )


def theme_section() -> rx.Component:
    return _section(
        "Appearance",
        "Applied at once and remembered on every device you sign in on.",
        rx.radio_cards.root(
            *[
                rx.radio_cards.item(
                    rx.flex(
                        rx.icon(icon, size=18, aria_hidden="true"),
                        rx.text(label, size="2", weight="medium"),
                        direction="column",
                        align="center",
                        spacing="1",
                    ),
                    value=value,
                    id=f"theme-{value}",
                )
                for (value, label), icon in zip(THEMES, _THEME_ICONS, strict=True)
            ],
            value=SettingsState.theme,
            on_value_change=SettingsState.set_theme,
            columns="3",
            gap="2",
            width="100%",
            aria_label="Theme",
        ),
    )


def privacy_section() -> rx.Component:
    return _section(
        "Read receipts",
        "When off, friends don't see when you read their messages, and you don't see "
        "when they read yours.",
        rx.el.label(
            rx.switch(
                checked=SettingsState.read_receipts,
                on_change=SettingsState.set_read_receipts,
                id="settings-read-receipts",
            ),
            rx.text("Send and see read receipts", size="2"),
            class_name="iris-choice",
        ),
    )


def timer_section() -> rx.Component:
    return _section(
        "Disappearing messages",
        "The timer a new chat starts with. Chats you already have keep theirs.",
        rx.flex(
            rx.el.label(
                "Default timer for new chats",
                html_for="default-timer",
                class_name="rt-Text rt-r-size-2 rt-r-weight-medium",
            ),
            rx.select.root(
                rx.select.trigger(id="default-timer", min_width="12em"),
                rx.select.content(
                    *[rx.select.item(label, value=value) for value, label in DEFAULT_TIMER_CHOICES]
                ),
                value=SettingsState.timer_choice,
                on_change=SettingsState.set_timer_choice,
            ),
            direction="column",
            spacing="1",
        ),
        rx.cond(
            SettingsState.timer_choice == "custom",
            rx.form(
                rx.flex(
                    rx.input(
                        value=SettingsState.custom_timer,
                        on_change=SettingsState.set_custom_timer,
                        placeholder="e.g. 90s, 10m, 2h, 3d, 1w",
                        aria_label="Custom default timer",
                        id="custom-default-timer",
                        name="custom_timer",
                        max_length=16,
                        width="12em",
                    ),
                    rx.button("Save timer", type="submit", variant="soft"),
                    spacing="2",
                    wrap="wrap",
                ),
                on_submit=SettingsState.save_custom_timer,
            ),
        ),
    )


def password_section() -> rx.Component:
    form = rx.form(
        rx.vstack(
            labelled_input(
                "Current password",
                "current_password",
                type="password",
                auto_complete="current-password",
                required=True,
            ),
            labelled_input(
                "New password",
                "new_password",
                type="password",
                auto_complete="new-password",
                required=True,
            ),
            rx.text(
                f"At least {PASSWORD_MIN} characters (at most {PASSWORD_MAX}).",
                size="1",
                color_scheme="gray",
            ),
            labelled_input(
                "Confirm new password",
                "confirm_password",
                type="password",
                auto_complete="new-password",
                required=True,
            ),
            rx.cond(
                SettingsState.change_error,
                rx.callout(
                    SettingsState.change_error,
                    icon="circle-alert",
                    color_scheme="red",
                    role="alert",
                    width="100%",
                    id="password-error",
                ),
            ),
            rx.button("Change password", type="submit", size="3"),
            spacing="3",
            width="100%",
            align="start",
        ),
        on_submit=SettingsState.change_password,
        width="100%",
    )
    return _section(
        "Password",
        "Changing it signs you out on every other device.",
        form,
    )


def sessions_section() -> rx.Component:
    return _section(
        "Signed-in devices",
        "Lost a phone or used a shared computer? End every session, this one included.",
        rx.button(
            rx.icon("log-out", size=16),
            "Sign out everywhere",
            variant="soft",
            color_scheme="gray",
            on_click=SettingsState.sign_out_everywhere,
            id="sign-out-everywhere",
        ),
    )


def delete_section() -> rx.Component:
    dialog = rx.alert_dialog.root(
        rx.alert_dialog.trigger(
            rx.button(rx.icon("trash-2", size=16), "Delete account…", color_scheme="red"),
        ),
        rx.alert_dialog.content(
            rx.alert_dialog.title("Delete your account?"),
            rx.alert_dialog.description(
                "Your messages, files, friends and settings are deleted for good, on every "
                "device and for your friends too. This cannot be undone.",
                size="2",
            ),
            rx.form(
                rx.vstack(
                    labelled_input(
                        "Your password",
                        DELETE_FIELD,
                        type="password",
                        auto_complete="current-password",
                        required=True,
                        auto_focus=True,
                    ),
                    rx.cond(
                        SettingsState.delete_error,
                        rx.callout(
                            SettingsState.delete_error,
                            icon="circle-alert",
                            color_scheme="red",
                            role="alert",
                            width="100%",
                            id="delete-error",
                        ),
                    ),
                    rx.flex(
                        rx.alert_dialog.cancel(
                            rx.button("Cancel", variant="soft", color_scheme="gray", type="button"),
                        ),
                        rx.button("Delete my account", type="submit", color_scheme="red"),
                        spacing="3",
                        justify="end",
                        wrap="wrap",
                        width="100%",
                    ),
                    spacing="3",
                    width="100%",
                    margin_top="1em",
                ),
                on_submit=SettingsState.delete_account,
                width="100%",
            ),
            max_width="440px",
        ),
        open=SettingsState.delete_open,
        on_open_change=SettingsState.set_delete_open,
    )
    return _section(
        "Delete account",
        "Removes everything you have on Iris. Your username becomes free for anyone.",
        dialog,
        border=f"1px solid {rx.color('red', 6)}",
    )
