"""The settings page's sections: profile, theme, receipts, default timer, password, sessions,
and deleting the account. Layout only: every change goes through ``SettingsState``."""

from __future__ import annotations

import reflex as rx

from iris_reflex.components.auth_card import labelled_input
from iris_reflex.components.chat import initial_avatar
from iris_reflex.components.passkeys import passkeys_loader
from iris_reflex.services.users import PASSWORD_MAX, PASSWORD_MIN
from iris_reflex.state.rows import DeviceRow, PasskeyRow
from iris_reflex.state.security import (
    CODE_FIELD,
    OFF_CODE,
    OFF_PASSWORD,
    PASSKEY_NAME,
    PASSKEY_PASSWORD,
    SecurityState,
)
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


def _security_error() -> rx.Component:
    return rx.cond(
        SecurityState.security_error,
        rx.callout(
            SecurityState.security_error,
            icon="circle-alert",
            color_scheme="red",
            role="alert",
            width="100%",
            id="two-step-error",
        ),
    )


def _recovery_codes() -> rx.Component:
    """The ten codes, shown once, with a way to copy them and to put them away."""
    return rx.vstack(
        rx.callout(
            "Save these recovery codes somewhere safe. Each one signs you in once if you "
            "lose your phone. They will not be shown again.",
            icon="key-round",
            color_scheme="amber",
            width="100%",
        ),
        rx.grid(
            rx.foreach(
                SecurityState.new_codes,
                lambda code: rx.code(code, size="3", variant="ghost", class_name="iris-code"),
            ),
            columns=rx.breakpoints(initial="1", xs="2"),
            spacing="2",
            width="100%",
            padding="0.75em",
            border_radius="var(--radius-3)",
            background=rx.color("gray", 3),
            id="recovery-codes",
        ),
        rx.flex(
            rx.button(
                rx.icon("copy", size=16),
                "Copy codes",
                variant="soft",
                type="button",
                on_click=[
                    rx.set_clipboard(SecurityState.new_codes.join("\n")),
                    rx.toast.success("Recovery codes copied."),
                ],
            ),
            rx.button(
                "I saved them",
                type="button",
                on_click=SecurityState.done_with_codes,
                id="recovery-codes-done",
            ),
            spacing="2",
            wrap="wrap",
        ),
        spacing="3",
        width="100%",
    )


def _enrolment() -> rx.Component:
    """Scan the QR code (or type the key), then confirm with a code from the app."""
    return rx.vstack(
        rx.text(
            "1. Scan this QR code with an authenticator app (or enter the key by hand).",
            size="2",
        ),
        rx.flex(
            rx.image(
                src=SecurityState.enrol_qr,
                alt="QR code to add Iris to an authenticator app",
                width="180px",
                height="180px",
                id="totp-qr",
                border_radius="var(--radius-2)",
            ),
            rx.vstack(
                rx.text("Key", size="1", color_scheme="gray", weight="medium"),
                rx.code(
                    SecurityState.enrol_secret,
                    size="2",
                    id="totp-secret",
                    word_break="break-all",
                    class_name="iris-code",
                ),
                spacing="1",
                min_width="0",
                flex="1",
            ),
            spacing="4",
            align="center",
            wrap="wrap",
            width="100%",
        ),
        rx.form(
            rx.vstack(
                labelled_input(
                    "2. Enter the 6-digit code the app shows",
                    CODE_FIELD,
                    auto_complete="one-time-code",
                    input_mode="numeric",
                    max_length=8,
                    required=True,
                    placeholder="123456",
                ),
                _security_error(),
                rx.flex(
                    rx.button("Turn on", type="submit", id="totp-confirm"),
                    rx.button(
                        "Cancel",
                        type="button",
                        variant="soft",
                        color_scheme="gray",
                        on_click=SecurityState.cancel_enrolment,
                    ),
                    spacing="2",
                    wrap="wrap",
                ),
                spacing="3",
                width="100%",
                align="start",
            ),
            on_submit=SecurityState.confirm_enrolment,
            reset_on_submit=True,
            width="100%",
        ),
        spacing="3",
        width="100%",
    )


def _reauthenticate_form(submit: rx.Component, on_submit: object) -> rx.Component:
    """The password, or a current code: to turn it off or to replace the recovery codes."""
    return rx.form(
        rx.vstack(
            rx.text(
                "Confirm it is you with your password, or with a code from your app.",
                size="2",
            ),
            labelled_input(
                "Password",
                OFF_PASSWORD,
                type="password",
                auto_complete="current-password",
            ),
            labelled_input(
                "Or a code",
                OFF_CODE,
                auto_complete="one-time-code",
                max_length=64,
                placeholder="123456",
            ),
            _security_error(),
            rx.flex(
                submit,
                rx.button(
                    "Cancel",
                    type="button",
                    variant="soft",
                    color_scheme="gray",
                    on_click=SecurityState.open_manage(""),
                ),
                spacing="2",
                wrap="wrap",
            ),
            spacing="3",
            width="100%",
            align="start",
        ),
        on_submit=on_submit,
        reset_on_submit=True,
        width="100%",
    )


def two_step_section() -> rx.Component:
    status = rx.hstack(
        rx.cond(
            SecurityState.two_step_on,
            rx.badge(rx.icon("shield-check", size=14), "On", color_scheme="green", size="2"),
            rx.badge("Off", color_scheme="gray", size="2"),
        ),
        rx.cond(
            SecurityState.two_step_on,
            rx.text(
                SecurityState.recovery_left.to_string(),
                " recovery codes left",
                size="2",
                color_scheme="gray",
            ),
        ),
        spacing="3",
        align="center",
        id="two-step-status",
    )
    on_actions = rx.flex(
        rx.button(
            "Make new recovery codes",
            variant="soft",
            type="button",
            on_click=SecurityState.open_manage("regenerate"),
        ),
        rx.button(
            "Turn off…",
            variant="soft",
            color_scheme="red",
            type="button",
            on_click=SecurityState.open_manage("off"),
        ),
        spacing="2",
        wrap="wrap",
    )
    body = rx.cond(
        SecurityState.new_codes.length() > 0,
        _recovery_codes(),
        rx.cond(
            SecurityState.enrolling,
            _enrolment(),
            rx.cond(
                SecurityState.two_step_on,
                rx.match(
                    SecurityState.manage,
                    (
                        "off",
                        _reauthenticate_form(
                            rx.button("Turn off", type="submit", color_scheme="red", id="totp-off"),
                            SecurityState.turn_off,
                        ),
                    ),
                    (
                        "regenerate",
                        _reauthenticate_form(
                            rx.button("Make new codes", type="submit", id="totp-regenerate"),
                            SecurityState.regenerate_codes,
                        ),
                    ),
                    on_actions,
                ),
                rx.vstack(
                    _security_error(),
                    rx.button(
                        rx.icon("shield-plus", size=16),
                        "Set up two-step sign-in",
                        type="button",
                        on_click=SecurityState.start_enrolment,
                        id="totp-start",
                    ),
                    width="100%",
                    align="start",
                ),
            ),
        ),
    )
    return _section(
        "Two-step sign-in",
        "After your password, Iris also asks for a code from an authenticator app on your "
        "phone, so a stolen password alone is not enough.",
        status,
        body,
        id="two-step",
        on_unmount=SecurityState.leave,
    )


def _passkey_error() -> rx.Component:
    return rx.cond(
        SecurityState.passkey_error,
        rx.callout(
            SecurityState.passkey_error,
            icon="circle-alert",
            color_scheme="red",
            role="alert",
            width="100%",
            id="passkey-error",
        ),
    )


def _cancel_passkey_form() -> rx.Component:
    return rx.button(
        "Cancel",
        type="button",
        variant="soft",
        color_scheme="gray",
        on_click=SecurityState.open_passkey_form(""),
    )


def _password_field() -> rx.Component:
    return labelled_input(
        "Your password",
        PASSKEY_PASSWORD,
        type="password",
        auto_complete="current-password",
        required=True,
    )


def _add_passkey_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            labelled_input(
                "Name",
                PASSKEY_NAME,
                max_length=64,
                required=True,
                placeholder="e.g. Work laptop",
                auto_focus=True,
            ),
            _password_field(),
            rx.text(
                "Your browser then asks you to create the passkey (a fingerprint, face, PIN "
                "or security key).",
                size="1",
                color_scheme="gray",
            ),
            _passkey_error(),
            rx.flex(
                rx.button(
                    "Create passkey",
                    type="submit",
                    id="passkey-create",
                    loading=SecurityState.passkey_busy,
                ),
                _cancel_passkey_form(),
                spacing="2",
                wrap="wrap",
            ),
            spacing="3",
            width="100%",
            align="start",
        ),
        on_submit=SecurityState.start_passkey,
        reset_on_submit=False,
        width="100%",
        id="passkey-add-form",
    )


def _passkey_row_form(row: PasskeyRow) -> rx.Component:
    """Rename it, or delete it with the password, under its row."""
    rename = rx.form(
        rx.flex(
            rx.input(
                name=PASSKEY_NAME,
                default_value=row.name,
                max_length=64,
                required=True,
                aria_label="New name for " + row.name,
                flex="1",
                min_width="10em",
            ),
            rx.button("Save", type="submit", variant="soft"),
            _cancel_passkey_form(),
            spacing="2",
            wrap="wrap",
            width="100%",
        ),
        on_submit=SecurityState.rename_passkey,
        width="100%",
    )
    remove = rx.form(
        rx.vstack(
            rx.text("It will no longer sign you in. Confirm with your password.", size="2"),
            _password_field(),
            rx.flex(
                rx.button("Delete passkey", type="submit", color_scheme="red", id="passkey-delete"),
                _cancel_passkey_form(),
                spacing="2",
                wrap="wrap",
            ),
            spacing="3",
            width="100%",
            align="start",
        ),
        on_submit=SecurityState.remove_passkey,
        reset_on_submit=True,
        width="100%",
    )
    return rx.cond(
        SecurityState.passkey_form == "rename:" + row.id.to_string(),
        rename,
        rx.cond(
            SecurityState.passkey_form == "remove:" + row.id.to_string(),
            rx.vstack(remove, _passkey_error(), width="100%"),
        ),
    )


def _passkey(row: PasskeyRow) -> rx.Component:
    return rx.vstack(
        rx.flex(
            rx.icon("key-round", size=20, aria_hidden="true", flex_shrink="0"),
            rx.vstack(
                rx.text(row.name, weight="medium", size="2", class_name="passkey-name"),
                rx.text("Added ", row.created, size="1", color_scheme="gray"),
                rx.text("Last used: ", row.used, size="1", color_scheme="gray"),
                spacing="0",
                flex="1",
                min_width="0",
            ),
            rx.flex(
                rx.button(
                    "Rename",
                    size="1",
                    variant="soft",
                    color_scheme="gray",
                    type="button",
                    on_click=SecurityState.open_passkey_form("rename:" + row.id.to_string()),
                    aria_label="Rename " + row.name,
                ),
                rx.button(
                    "Delete",
                    size="1",
                    variant="soft",
                    color_scheme="red",
                    type="button",
                    on_click=SecurityState.open_passkey_form("remove:" + row.id.to_string()),
                    aria_label="Delete " + row.name,
                    class_name="passkey-delete",
                ),
                spacing="2",
                flex_shrink="0",
            ),
            spacing="3",
            align="center",
            width="100%",
        ),
        _passkey_row_form(row),
        spacing="2",
        width="100%",
        padding_y="0.5em",
        border_bottom=f"1px solid {rx.color('gray', 4)}",
        class_name="iris-passkey",
    )


def passkeys_section() -> rx.Component:
    return _section(
        "Passkeys",
        "Sign in with your fingerprint, face, PIN or a security key instead of your "
        "password. A passkey also passes two-step sign-in.",
        passkeys_loader(),
        rx.cond(
            SecurityState.passkeys.length() > 0,
            rx.vstack(
                rx.foreach(SecurityState.passkeys, _passkey),
                spacing="0",
                width="100%",
                id="passkeys",
            ),
            rx.text("No passkeys yet.", size="2", color_scheme="gray", id="no-passkeys"),
        ),
        rx.cond(
            SecurityState.passkey_form == "add",
            _add_passkey_form(),
            rx.button(
                rx.icon("plus", size=16),
                "Add a passkey",
                type="button",
                variant="soft",
                on_click=SecurityState.open_passkey_form("add"),
                id="passkey-add",
            ),
        ),
        id="passkeys-section",
    )


def _device(row: DeviceRow) -> rx.Component:
    return rx.flex(
        rx.icon("monitor-smartphone", size=20, aria_hidden="true", flex_shrink="0"),
        rx.vstack(
            rx.hstack(
                rx.text(row.description, weight="medium", size="2"),
                rx.cond(row.current, rx.badge("This device", color_scheme="green", size="1")),
                spacing="2",
                align="center",
                wrap="wrap",
            ),
            rx.text("Signed in ", row.signed_in, size="1", color_scheme="gray"),
            rx.text(
                rx.cond(row.current, "Active now", "Last active " + row.active),
                size="1",
                color_scheme="gray",
            ),
            spacing="0",
            flex="1",
            min_width="0",
        ),
        rx.cond(
            row.current,
            rx.fragment(),
            rx.button(
                "Sign out",
                size="1",
                variant="soft",
                color_scheme="gray",
                type="button",
                on_click=SecurityState.sign_out_device(row.handle),
                aria_label="Sign out " + row.description,
                class_name="device-sign-out",
            ),
        ),
        spacing="3",
        align="center",
        width="100%",
        padding_y="0.5em",
        border_bottom=f"1px solid {rx.color('gray', 4)}",
        class_name="iris-device",
        data_current=rx.cond(row.current, "true", "false"),
    )


def sessions_section() -> rx.Component:
    return _section(
        "Signed-in devices",
        "Where your account is signed in now. Sign out one you don't recognise, or all of "
        "them if you lost a phone or used a shared computer.",
        rx.vstack(
            rx.foreach(SecurityState.devices, _device), spacing="0", width="100%", id="devices"
        ),
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
