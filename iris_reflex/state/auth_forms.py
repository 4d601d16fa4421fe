"""The login and register forms: validate through the services, then hand off the session."""

from __future__ import annotations

import reflex as rx
from sqlmodel import Session

from iris_reflex.db import in_session
from iris_reflex.errors import DomainError
from iris_reflex.services import auth, users
from iris_reflex.state.session import handoff_script, tab_address

HANDOFF_FAILED = "Could not finish signing in. Check your connection and try again."


def _register(db: Session, username: str, password: str, ip: str) -> auth.SignedIn:
    user = users.check_register(db, username=username, password=password, ip=ip)
    return auth.login(db, username=user.username, password=password, ip=ip)


class AuthFormState(rx.State):
    """Shared by the login and register pages: one error line and a busy flag."""

    error: str = ""
    busy: bool = False

    def _client_ip(self) -> str:
        return tab_address(self.router)

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
        try:
            signed = await in_session(
                auth.login,
                username=str(form.get("username", "")),
                password=str(form.get("password", "")),
                ip=self._client_ip(),
            )
        except DomainError as exc:
            self.error = exc.message
            return None
        self.busy = True
        return self._signed_in(signed)

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
                _register, str(form.get("username", "")), password, self._client_ip()
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
