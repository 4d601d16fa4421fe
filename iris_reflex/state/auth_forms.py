"""The login and register forms: validate through the services, then hand off the session.

Two-step sign-in: when the password is right and the account asks for a code, the form's
second step appears. The short-lived challenge (``auth.login``'s, 5 minutes, single-use,
useless without a code) is kept in a backend-only var, never sent to the page, and dropped
on success, on "Back" and when the form is reset.

Passkeys: the page runs the WebAuthn ceremony (``assets/js/passkeys.js``) with options made
here and answers through a callback event, which the services check. The second step's
challenge stays server-side that way too: the page only ever sees WebAuthn options.
"""

from __future__ import annotations

from typing import Any

import reflex as rx
from sqlmodel import Session

from iris_reflex.db import in_session
from iris_reflex.errors import DomainError, SecondFactorRequired
from iris_reflex.services import auth, users
from iris_reflex.state.sealed import Sealed
from iris_reflex.state.session import (
    handoff_script,
    passkey_answer,
    passkey_script,
    tab_address,
)

HANDOFF_FAILED = "Could not finish signing in. Check your connection and try again."
CODE_FIELD = "code"


def _register(db: Session, username: str, password: str, ip: str, user_agent: str) -> auth.SignedIn:
    user = users.check_register(db, username=username, password=password, ip=ip)
    return auth.login(db, username=user.username, password=password, ip=ip, user_agent=user_agent)


class AuthFormState(Sealed, rx.State):
    """Shared by the login and register pages: one error line and a busy flag (sealed when
    persisted: it holds the second-factor challenge)."""

    error: str = ""
    busy: bool = False
    second_step: bool = False  # the password was right; the code is asked next
    code_step: bool = False  # the second step takes a code (two-step sign-in is on)
    passkey_step: bool = False  # the second step takes a passkey
    passkey_busy: bool = False  # a passkey ceremony is under way in the browser
    _challenge: str = ""

    def _client_ip(self) -> str:
        return tab_address(self.router)

    def _user_agent(self) -> str:
        return str(self.router.headers.user_agent or "")[:512]

    def _signed_in(self, signed: auth.SignedIn):
        handoff = auth.issue_handoff(
            auth.Identity(user_id=signed.user.id or 0, session_id=signed.session_id)
        )
        return rx.call_script(handoff_script(handoff), callback=AuthFormState.handoff_done)

    @rx.event
    def handoff_done(self, ok: bool) -> None:
        """The page reports whether it got its cookie (on success it navigates away)."""
        if not ok:
            self.busy = False
            self.error = HANDOFF_FAILED

    @rx.event
    async def log_in(self, form: dict[str, str]):
        """Check the credentials; on success the page trades a handoff for its cookie.
        (Password hashing takes tens of milliseconds: it runs off the event loop.)"""
        self.error = ""
        self._leave_second_step()
        try:
            signed = await in_session(
                auth.login,
                username=str(form.get("username", "")),
                password=str(form.get("password", "")),
                ip=self._client_ip(),
                user_agent=self._user_agent(),
            )
        except SecondFactorRequired as needed:
            self._challenge = needed.challenge
            self.second_step = True
            self.code_step = "totp" in needed.methods
            self.passkey_step = auth.PASSKEY_METHOD in needed.methods
            if not self.code_step:
                self.error = needed.message
            return None
        except DomainError as exc:
            self.error = exc.message
            return None
        self.busy = True
        return self._signed_in(signed)

    @rx.event
    async def verify_code(self, form: dict[str, str]):
        """The second step: a code from the authenticator app, or a recovery code."""
        self.error = ""
        if not self._challenge:
            self.second_step = False
            self.error = auth.CHALLENGE_ENDED
            return None
        try:
            signed = await in_session(
                auth.finish_login,
                challenge=self._challenge,
                code=str(form.get(CODE_FIELD, ""))[:64],
                ip=self._client_ip(),
                user_agent=self._user_agent(),
            )
        except DomainError as exc:
            self.error = exc.message
            if exc.message == auth.CHALLENGE_ENDED:
                self.second_step, self._challenge = False, ""
            return rx.set_value(CODE_FIELD, "")
        self._challenge = ""
        self.busy = True
        return self._signed_in(signed)

    # ------------------------------------------------------------------------- passkeys

    def _passkey_failed(self, message: str) -> None:
        self.passkey_busy = False
        self.error = message

    @rx.event
    async def sign_in_with_passkey(self):
        """Ask the browser for any passkey of this site (a discoverable credential)."""
        self.error = ""
        try:
            options = await in_session(auth.passkey_sign_in_options, ip=self._client_ip())
        except DomainError as exc:
            return self._passkey_failed(exc.message)
        self.passkey_busy = True
        return rx.call_script(
            passkey_script("get", options), callback=AuthFormState.passkey_answered
        )

    @rx.event
    async def passkey_answered(self, result: dict[str, Any]):
        """The browser's answer to a passkey sign-in: checked by the services, then the
        page trades a handoff for its cookie as after a password."""
        credential, problem = passkey_answer(result)
        if credential is None:
            return self._passkey_failed(problem)
        try:
            signed = await in_session(
                auth.login_with_passkey,
                credential=credential,
                ip=self._client_ip(),
                user_agent=self._user_agent(),
            )
        except DomainError as exc:
            return self._passkey_failed(exc.message)
        self.passkey_busy = False
        self.busy = True
        return self._signed_in(signed)

    @rx.event
    async def use_passkey(self):
        """The second step with a passkey: only the user's own are offered."""
        self.error = ""
        if not self._challenge:
            self._leave_second_step()
            self.error = auth.CHALLENGE_ENDED
            return None
        try:
            options = await in_session(
                auth.passkey_second_factor_options, challenge=self._challenge
            )
        except DomainError as exc:
            return self._passkey_failed(exc.message)
        self.passkey_busy = True
        return rx.call_script(
            passkey_script("get", options), callback=AuthFormState.second_step_answered
        )

    @rx.event
    async def second_step_answered(self, result: dict[str, Any]):
        """The browser's answer to the second step's passkey challenge."""
        credential, problem = passkey_answer(result)
        if credential is None:
            return self._passkey_failed(problem)
        if not self._challenge:
            self._leave_second_step()
            return self._passkey_failed(auth.CHALLENGE_ENDED)
        try:
            signed = await in_session(
                auth.finish_login_with_passkey,
                challenge=self._challenge,
                credential=credential,
                ip=self._client_ip(),
                user_agent=self._user_agent(),
            )
        except DomainError as exc:
            if exc.message == auth.CHALLENGE_ENDED:
                self._leave_second_step()
            return self._passkey_failed(exc.message)
        self._challenge = ""
        self.passkey_busy = False
        self.busy = True
        return self._signed_in(signed)

    def _leave_second_step(self) -> None:
        self.second_step, self._challenge = False, ""
        self.code_step = self.passkey_step = False
        self.error = ""

    @rx.event
    def back_to_password(self) -> None:
        """Leave the second step: the challenge is dropped, the password is asked again."""
        self._leave_second_step()

    @rx.event
    async def register(self, form: dict[str, str]):
        """Create the account and sign in with it."""
        self.error = ""
        password = str(form.get("password", ""))
        if password != str(form.get("confirm", "")):
            self.error = "The two passwords do not match."
            return None
        try:
            signed = await in_session(
                _register,
                str(form.get("username", "")),
                password,
                self._client_ip(),
                self._user_agent(),
            )
        except DomainError as exc:
            self.error = exc.message
            return None
        self.busy = True
        return self._signed_in(signed)

    @rx.event
    def clear(self) -> None:
        """Reset the form state when a page opens."""
        self.error = ""
        self.busy = self.passkey_busy = False
        self.second_step, self._challenge = False, ""
        self.code_step = self.passkey_step = False
