"""The login and register forms: validate through the services, then hand off the session.

Two-step sign-in: when the password is right and the account asks for a code, the form's
second step appears. The short-lived challenge (``auth.login``'s, 5 minutes, single-use,
useless without a code) is kept in a backend-only var, never sent to the page, and dropped
on success, on "Back" and when the form is reset.
"""

from __future__ import annotations

import reflex as rx
from sqlmodel import Session

from iris_reflex.db import in_session
from iris_reflex.errors import DomainError, SecondFactorRequired
from iris_reflex.services import auth, users
from iris_reflex.state.sealed import Sealed
from iris_reflex.state.session import handoff_script, tab_address

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
        self.second_step, self._challenge = False, ""
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

    @rx.event
    def back_to_password(self) -> None:
        """Leave the second step: the challenge is dropped, the password is asked again."""
        self.second_step, self._challenge = False, ""
        self.error = ""

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
        self.busy = False
        self.second_step, self._challenge = False, ""
