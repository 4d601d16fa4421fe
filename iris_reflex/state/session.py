"""Who is signed in, for the web UI.

The session token lives in an HttpOnly cookie (see ``api/web_session.py``); event handlers
read it from the websocket's handshake headers and verify it against the database on every
protected event, so a logout elsewhere or a tampered cookie takes effect at once. The user
id is kept only in backend vars (leading underscore), which never reach the browser.
"""

from __future__ import annotations

import json
from http.cookies import CookieError, SimpleCookie

import reflex as rx
from reflex.config import get_config

from iris_reflex.api.web_session import SESSION_COOKIE
from iris_reflex.db import session_scope
from iris_reflex.errors import NotAuthenticated
from iris_reflex.services import auth

LOGIN_ROUTE = "/login"
HOME_ROUTE = "/"


def backend_base_js() -> str:
    """A JS expression for the backend's base URL, resolved as Reflex resolves its own.

    In production the exported frontend may be served elsewhere than the backend
    (``REFLEX_API_URL``); on one host a loopback ``api_url`` means "this page's host".
    """
    api_url = json.dumps(get_config().api_url.rstrip("/"))
    return (
        "(() => { const u = new URL(" + api_url + ");"
        " if (['localhost','127.0.0.1','0.0.0.0','[::]'].includes(u.hostname)) {"
        " u.hostname = window.location.hostname;"
        " if (window.location.protocol === 'https:') { u.protocol = 'https:'; u.port = ''; } }"
        " return u.origin + u.pathname.replace(/\\/$/, ''); })()"
    )


def handoff_script(handoff: str) -> str:
    """JS that trades a handoff token for the session cookie, then opens the home page."""
    return (
        "fetch(" + backend_base_js() + " + '/api/auth/web/session', {method: 'POST',"
        " credentials: 'include', headers: {'Content-Type': 'application/json'},"
        " body: JSON.stringify({handoff: " + json.dumps(handoff) + "})})"
        ".then(r => { if (r.ok) { window.location.assign('" + HOME_ROUTE + "'); }"
        " return r.ok; }).catch(() => false)"
    )


def logout_script() -> str:
    """JS that clears the session cookie, then opens the login page."""
    return (
        "fetch(" + backend_base_js() + " + '/api/auth/web/logout', {method: 'POST',"
        " credentials: 'include'}).finally(() => window.location.assign('" + LOGIN_ROUTE + "'))"
    )


class SessionState(rx.State):
    """The signed-in user as the page shows them, and the checks every handler relies on."""

    _user_id: int | None = None
    _session_id: str | None = None
    username: str = ""
    display_name: str = ""
    signed_in: bool = False

    def _cookie_token(self) -> str | None:
        raw = self.router.headers.cookie
        if not raw:
            return None
        try:
            jar = SimpleCookie(raw)
        except CookieError:
            return None
        morsel = jar.get(SESSION_COOKIE)
        return morsel.value if morsel else None

    def verified_identity(self) -> auth.Identity:
        """Verify the cookie's token now; raises ``NotAuthenticated`` when it is not valid."""
        with session_scope() as db:
            identity = auth.authenticate(db, self._cookie_token())
        return identity

    def _forget(self) -> None:
        self._user_id = None
        self._session_id = None
        self.username = ""
        self.display_name = ""
        self.signed_in = False

    @rx.event
    def require_user(self):  # type: ignore[no-untyped-def]
        """On load of a protected page: show the user, or send them to the login page."""
        try:
            with session_scope() as db:
                identity, user = auth.signed_in_user(db, self._cookie_token())
        except NotAuthenticated:
            self._forget()
            return rx.redirect(LOGIN_ROUTE)
        self._user_id = identity.user_id
        self._session_id = identity.session_id
        self.username = user.username
        self.display_name = user.display_name
        self.signed_in = True
        return None

    @rx.event
    def redirect_if_signed_in(self):  # type: ignore[no-untyped-def]
        """On load of the login and register pages: a signed-in user goes home."""
        try:
            self.verified_identity()
        except NotAuthenticated:
            self._forget()
            return None
        return rx.redirect(HOME_ROUTE)

    @rx.event
    async def log_out(self):  # type: ignore[no-untyped-def]
        """Revoke this session on the server, clear the cookie, go to the login page."""
        from iris_reflex.state.chat import ChatState

        try:
            identity = self.verified_identity()
            with session_scope() as db:
                auth.logout(db, identity)
        except NotAuthenticated:
            pass
        chat = await self.get_state(ChatState)
        await chat._forget_tab()
        self._forget()
        return rx.call_script(logout_script())
