"""The settings page's "Passkeys", "Two-step sign-in" and "Signed-in devices" sections.

Thin, like the rest of the settings: ``services.two_factor`` and ``services.accounts`` hold
the rules; every handler first verifies the session cookie (``_signed_in``) and acts as
that user only.

Secrets in state: the enrolment secret (and its QR code) and fresh recovery codes are the
only secrets this page ever shows, so they sit in public vars only while they are on
screen. They are emptied when the person confirms, cancels, closes the codes, leaves the
page (``leave``, on unmount), when the page loads again, and when the session ends (this is
a ``SessionState`` substate: ``_empty_tab`` clears it).
"""

from __future__ import annotations

from typing import Any

import reflex as rx
from sqlmodel import Session

from iris_reflex import clock
from iris_reflex.actions import accounts as account_actions
from iris_reflex.db import in_session
from iris_reflex.paths import LOGIN_ROUTE
from iris_reflex.services import accounts, auth, passkeys, two_factor
from iris_reflex.state import rows
from iris_reflex.state.guard import guarded
from iris_reflex.state.rows import DeviceRow, PasskeyRow
from iris_reflex.state.session import (
    SessionState,
    passkey_answer,
    passkey_script,
    tab_address,
)

CODE_FIELD = "totp_code"
OFF_PASSWORD, OFF_CODE = "off_password", "off_code"
PASSKEY_NAME, PASSKEY_PASSWORD = "passkey_name", "passkey_password"


def _error(state: Any, message: str) -> None:
    state.security_error = message


def _to_login(_state: Any, _message: str) -> Any:
    return rx.redirect(LOGIN_ROUTE)


def _overview(
    db: Session, identity: auth.Identity
) -> tuple[two_factor.Status, list[auth.Device], list[passkeys.PasskeyInfo]]:
    return (
        two_factor.status(db, actor_id=identity.user_id),
        auth.list_devices(db, identity),
        passkeys.list_passkeys(db, actor_id=identity.user_id),
    )


class SecurityState(SessionState):
    """Two-step sign-in (status, enrolment, recovery codes) and the devices list."""

    two_step_on: bool = False
    recovery_left: int = 0
    enrolling: bool = False
    enrol_qr: str = ""  # shown while enrolling only
    enrol_secret: str = ""  # shown while enrolling only
    new_codes: list[str] = []  # shown once, right after they are made
    manage: str = ""  # "" | "off" | "regenerate": which re-authentication form is open
    security_error: str = ""
    devices: list[DeviceRow] = []
    passkeys: list[PasskeyRow] = []
    passkey_form: str = ""  # "" | "add" | "remove:<id>" | "rename:<id>": which form is open
    passkey_error: str = ""
    passkey_busy: bool = False  # the browser is making a passkey
    _passkey_name: str = ""

    def _clear(self) -> None:
        self._forget_secrets()
        self._close_passkey_form()
        self.two_step_on = False
        self.recovery_left = 0
        self.devices = []
        self.passkeys = []

    def _close_passkey_form(self) -> None:
        self.passkey_form = self.passkey_error = self._passkey_name = ""
        self.passkey_busy = False

    def _forget_secrets(self) -> None:
        self.enrolling = False
        self.enrol_qr = self.enrol_secret = ""
        self.new_codes = []
        self.manage = ""
        self.security_error = ""

    def _identity(self) -> auth.Identity:
        assert self._user_id is not None and self._session_id is not None
        return auth.Identity(user_id=self._user_id, session_id=self._session_id)

    async def _refresh(self) -> None:
        status, devices, keys = await in_session(_overview, self._identity())
        self.two_step_on = status.enabled
        self.recovery_left = status.recovery_codes_left
        tz = rows.zone(self._tz)
        today = clock.now().astimezone(tz).date()
        self.devices = [rows.device_row(d, tz, today) for d in devices]
        self.passkeys = [rows.passkey_row(p, tz, today) for p in keys]

    # ----------------------------------------------------------------------------- loading

    @rx.event
    @guarded(refused=_to_login)
    async def load(self) -> None:
        """On load of /settings: whether two-step sign-in is on, and the devices."""
        await self._signed_in()
        self._forget_secrets()
        self._close_passkey_form()
        await self._refresh()

    @rx.event
    @guarded
    async def leave(self) -> None:
        """The section left the screen: secrets go, and an unfinished setup is dropped."""
        user_id = await self._signed_in()
        if self.enrolling:
            await in_session(two_factor.cancel_enrolment, actor_id=user_id)
        self._forget_secrets()

    # --------------------------------------------------------------------------- enrolment

    @rx.event
    @guarded(refused=_error)
    async def start_enrolment(self) -> None:
        """A new secret: the page shows it as a QR code and as text until confirmed."""
        user_id = await self._signed_in()
        self._forget_secrets()
        enrolment = await in_session(two_factor.begin_enrolment, actor_id=user_id)
        self.enrolling = True
        self.enrol_qr, self.enrol_secret = enrolment.qr_svg, enrolment.secret

    @rx.event
    @guarded
    async def cancel_enrolment(self) -> None:
        user_id = await self._signed_in()
        await in_session(two_factor.cancel_enrolment, actor_id=user_id)
        self._forget_secrets()

    @rx.event
    @guarded(refused=_error)
    async def confirm_enrolment(self, form: dict[str, Any]):
        """A code from the app turns it on; the recovery codes are shown once."""
        user_id = await self._signed_in()
        self.security_error = ""
        codes = await in_session(
            two_factor.confirm_enrolment, actor_id=user_id, code=str(form.get(CODE_FIELD, ""))
        )
        self._forget_secrets()
        self.new_codes = codes
        await self._refresh()
        return rx.toast.success("Two-step sign-in is on.")

    @rx.event
    @guarded
    async def done_with_codes(self) -> None:
        """The person saved the codes: they leave the page's state."""
        await self._signed_in()
        self.new_codes = []

    # ------------------------------------------------------------ turn off, regenerate

    @rx.event
    @guarded
    async def open_manage(self, which: str) -> None:
        """Open the password-or-code form to turn it off or to replace the recovery codes."""
        await self._signed_in()
        self.manage = str(which) if which in ("off", "regenerate") else ""
        self.security_error = ""
        self.new_codes = []

    async def _reauthenticated(self, fn: Any, form: dict[str, Any]) -> Any:
        user_id = await self._signed_in()
        self.security_error = ""
        return await in_session(
            fn,
            actor_id=user_id,
            password=str(form.get(OFF_PASSWORD, "")),
            code=str(form.get(OFF_CODE, "")),
            ip=tab_address(self.router),
        )

    @rx.event
    @guarded(refused=_error)
    async def turn_off(self, form: dict[str, Any]):
        """Turn two-step sign-in off, with the password or a current code."""
        await self._reauthenticated(accounts.turn_off_two_factor, form)
        self._forget_secrets()
        await self._refresh()
        return rx.toast.success("Two-step sign-in is off.")

    @rx.event
    @guarded(refused=_error)
    async def regenerate_codes(self, form: dict[str, Any]) -> None:
        """Ten new recovery codes (the old ones stop working), shown once."""
        codes = await self._reauthenticated(accounts.regenerate_recovery_codes, form)
        self._forget_secrets()
        self.new_codes = codes
        await self._refresh()

    # ----------------------------------------------------------------------------- devices

    @rx.event
    @guarded
    async def refresh_devices(self) -> None:
        await self._signed_in()
        await self._refresh()

    @rx.event
    @guarded
    async def sign_out_device(self, handle: str):
        """End one session; its open tabs are emptied and sent to the login page. Ending
        this one is signing out."""
        await self._signed_in()
        was_this_one = await in_session(
            account_actions.sign_out_device,
            identity=self._identity(),
            handle=str(handle)[:64],
            skip_token=self._token(),
        )
        if was_this_one:
            return SessionState.log_out
        await self._refresh()
        return rx.toast.success("That device is signed out.")

    # ---------------------------------------------------------------------------- passkeys

    def _passkey_refused(self, message: str) -> None:
        self.passkey_busy = False
        # These forms ask for the password only: the service's sentence also names a code.
        wrong = message == accounts.WRONG_PASSWORD_OR_CODE
        self.passkey_error = accounts.WRONG_PASSWORD if wrong else message

    @rx.event
    @guarded
    async def open_passkey_form(self, which: str) -> None:
        """Open the form to add a passkey, or to rename or delete one (``rename:<id>``,
        ``remove:<id>``); "" closes it."""
        await self._signed_in()
        kind, _, raw = str(which).partition(":")
        known = {str(p.id) for p in self.passkeys}
        self._close_passkey_form()
        if kind == "add" or (kind in ("rename", "remove") and raw in known):
            self.passkey_form = str(which)

    @rx.event
    @guarded(refused=_passkey_refused)
    async def start_passkey(self, form: dict[str, Any]):
        """The password proves it is the owner; then the browser makes the passkey."""
        user_id = await self._signed_in()
        self.passkey_error = ""
        name = passkeys.clean_name(str(form.get(PASSKEY_NAME, "")))
        options = await in_session(
            accounts.begin_passkey_registration,
            actor_id=user_id,
            password=str(form.get(PASSKEY_PASSWORD, "")),
            ip=tab_address(self.router),
        )
        self._passkey_name = name
        self.passkey_busy = True
        return rx.call_script(
            passkey_script("create", options), callback=SecurityState.passkey_created
        )

    @rx.event
    @guarded(refused=_passkey_refused)
    async def passkey_created(self, result: dict[str, Any]):
        """The browser's new passkey: checked and stored by the service."""
        user_id = await self._signed_in()
        credential, problem = passkey_answer(result)
        if credential is None:
            return self._passkey_refused(problem)
        name = self._passkey_name or "Passkey"
        await in_session(passkeys.register, actor_id=user_id, credential=credential, name=name)
        self._close_passkey_form()
        await self._refresh()
        return rx.toast.success("Passkey added.")

    def _open_id(self, kind: str) -> int:
        opened, _, raw = self.passkey_form.partition(":")
        return int(raw) if opened == kind and raw.isdigit() else 0

    @rx.event
    @guarded(refused=_passkey_refused)
    async def rename_passkey(self, form: dict[str, Any]):
        user_id = await self._signed_in()
        await in_session(
            passkeys.rename,
            actor_id=user_id,
            passkey_id=self._open_id("rename"),
            name=str(form.get(PASSKEY_NAME, "")),
        )
        self._close_passkey_form()
        await self._refresh()

    @rx.event
    @guarded(refused=_passkey_refused)
    async def remove_passkey(self, form: dict[str, Any]):
        """Delete the passkey whose form is open, with the password (as turning two-step
        sign-in off)."""
        user_id = await self._signed_in()
        await in_session(
            accounts.remove_passkey,
            actor_id=user_id,
            passkey_id=self._open_id("remove"),
            password=str(form.get(PASSKEY_PASSWORD, "")),
            ip=tab_address(self.router),
        )
        self._close_passkey_form()
        await self._refresh()
        return rx.toast.success("Passkey deleted. It no longer signs you in.")
