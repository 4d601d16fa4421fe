"""Who is signed in, for the web UI: the base state every signed-in state builds on.

The session token lives in an HttpOnly cookie (see ``api/web_session.py``); handlers read it
from the websocket's handshake headers and verify it against the database on every event
(``_signed_in``), so a logout elsewhere or a tampered cookie takes effect at once. The user id
is kept only in backend vars (leading underscore), which never reach the browser. Every
state of a signed-in page is a substate of ``SessionState``: it inherits the check, and a
sign-out empties all of them (each substate's ``_clear``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import reflex as rx
from reflex.config import get_config
from reflex.istate.data import RouterData
from sqlmodel import Session

from iris_reflex.db import in_one_statement, in_session, session_scope
from iris_reflex.errors import NotAuthenticated
from iris_reflex.live.registry import get_registry
from iris_reflex.paths import HOME_ROUTE, LOGIN_ROUTE
from iris_reflex.services import addresses, auth, users
from iris_reflex.state import connections, rows
from iris_reflex.state.sealed import Sealed

T = TypeVar("T")


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


PASSKEYS_NOT_LOADED = "Passkeys could not start here: reload the page and try again."
PASSKEY_FAILED = "The passkey could not be used. Try again."
_PASSKEY_ERROR_MAX = 300


def passkey_script(kind: str, options: dict[str, Any]) -> str:
    """JS that runs a WebAuthn ceremony (``kind`` ``create`` or ``get``) with the server's
    options through ``assets/js/passkeys.js``; it resolves to ``{credential}`` or ``{error}``
    and never rejects, so the callback event always hears back."""
    method = "create" if kind == "create" else "get"
    return (
        "(window.irisPasskeys ? window.irisPasskeys." + method + "(" + json.dumps(options) + ")"
        " : Promise.resolve({error: " + json.dumps(PASSKEYS_NOT_LOADED) + "}))"
    )


def passkey_answer(result: object) -> tuple[dict[str, Any] | None, str]:
    """What a passkey script answered: the credential, or the sentence to show (anything
    else a client sends here is just a failure)."""
    if isinstance(result, dict):
        credential = result.get("credential")
        if isinstance(credential, dict):
            return credential, ""
        error = result.get("error")
        if isinstance(error, str) and error.strip():
            return None, error.strip()[:_PASSKEY_ERROR_MAX]
    return None, PASSKEY_FAILED


def tab_address(router: RouterData) -> str:
    """The client address of this tab's websocket, for throttling and rate limits.

    The peer is the socket's own (Reflex's ``client_ip`` would follow ``X-Forwarded-For``
    blindly when ``trusted_proxy_hops`` is set); ``addresses`` decides whether to believe
    the header, exactly as for the JSON API.
    """
    headers = router.headers.raw_headers
    peer = headers.get("asgi-scope-client") or router.session.client_ip
    return addresses.client_address(peer, headers.get("x-forwarded-for"))


def logout_script() -> str:
    """JS that clears the session cookie, then opens the login page."""
    return (
        "fetch(" + backend_base_js() + " + '/api/auth/web/logout', {method: 'POST',"
        " credentials: 'include'}).finally(() => window.location.assign('" + LOGIN_ROUTE + "'))"
    )


def _verified(db: Session, token: str | None, expected_user_id: int | None) -> auth.Identity:
    """The identity the cookie's token proves, if it is the tab's own user (a tab signed in
    as one user never acts as another who signed in later in the same browser)."""
    identity = auth.authenticate(db, token)
    if expected_user_id is not None and expected_user_id != identity.user_id:
        raise NotAuthenticated("This tab belongs to another session.")
    return identity


def _me(db: Session, user_id: int) -> users.Me:
    return users.Me.of(users.access_user(db, user_id))


class SessionState(Sealed, rx.State):
    """The signed-in user as the page shows them, and the check every handler relies on.

    Sealed (``state.sealed``), and so is every substate: the conversation, its messages,
    the sidebar's previews, the two-step enrolment secret and recovery codes.
    """

    _user_id: int | None = None
    _session_id: str | None = None
    _tz: str = "UTC"  # the browser's time zone, for times and day separators
    username: str = ""
    display_name: str = ""
    avatar: str = ""  # the user's own picture's URL path, "" for the initial
    signed_in: bool = False

    def _cookie_token(self) -> str | None:
        """The session cookie of this tab's socket: held by this process, never in the
        state (``state.connections``); a tab built without a socket (tests) reads its
        headers."""
        held = connections.session_token(self.router.session.session_id)
        return held or connections.parse_session_cookie(self.router.headers.cookie)

    def _verified_identity(self) -> auth.Identity:
        """Verify the cookie's token now; raises ``NotAuthenticated`` when it is not valid."""
        with session_scope() as db:
            return auth.authenticate(db, self._cookie_token())

    async def _signed_in(self) -> int:
        """The verified user id for this event (re-checked against the session table, off
        the event loop)."""
        identity = await in_session(_verified, self._cookie_token(), self._user_id)
        self._user_id = identity.user_id
        self._session_id = identity.session_id
        return identity.user_id

    async def _as_signed_in(self, action: Callable[..., T], /, **kwargs: Any) -> T:
        """``action(db, actor_id=<the verified user>, **kwargs)``: ``_signed_in`` and the
        action in one trip off the event loop and one database session (the hot path: a
        message sent). Nothing runs unless the cookie's session is live and is this tab's."""
        token, expected = self._cookie_token(), self._user_id

        def verified_then_act(db: Session) -> tuple[auth.Identity, T]:
            identity = _verified(db, token, expected)
            return identity, action(db, actor_id=identity.user_id, **kwargs)

        identity, result = await in_session(verified_then_act)
        self._user_id = identity.user_id
        self._session_id = identity.session_id
        return result

    async def _as_claimed(self, action: Callable[..., T | None], /, **kwargs: Any) -> T | None:
        """``action(db, identity=<what the cookie's token claims>, **kwargs)`` as one
        statement of its own (``db.in_one_statement``), for an action whose statement checks
        that session itself (``auth.live_session_clause``) and returns None when it is not
        live. None too when the token proves nothing, or another user than this tab's: the
        caller then takes ``_as_signed_in``, which says why."""
        identity = auth.claimed_identity(self._cookie_token())
        if identity is None or self._user_id not in (None, identity.user_id):
            return None
        done = await in_one_statement(action, identity=identity, **kwargs)
        if done is not None:
            self._user_id = identity.user_id
            self._session_id = identity.session_id
        return done

    def _token(self) -> str:
        """This tab's client token (live pushes skip the tab that acted). Read from the
        session var itself: ``self.router`` builds a whole ``RouterData`` on each read."""
        return self.rx_router_session.client_token

    def _show_me(self, me: users.Me) -> None:
        self.username = me.username
        self.display_name = me.display_name
        self.avatar = rows.avatar_path(me)

    async def _refresh_me(self) -> None:
        """The user's own name and picture (edited in another tab, or in Settings)."""
        if self._user_id is None:
            return
        self._show_me(await in_session(_me, self._user_id))

    def _clear(self) -> None:
        self._user_id = None
        self._session_id = None
        self.username = ""
        self.display_name = ""
        self.avatar = ""
        self.signed_in = False

    async def _empty_tab(self) -> None:
        """On sign-out: this tab stops receiving the user's pushes and shows nothing (called
        from any of its states: each substate clears its own fields, then the base)."""
        base = await self.get_state(SessionState)
        if base._user_id is not None:
            await get_registry().remove(base._user_id, self._token())
        pending = list(SessionState.get_substates())
        while pending:
            cls = pending.pop()
            pending.extend(cls.get_substates())
            substate = await self.get_state(cls)
            if isinstance(substate, SessionState):
                substate._clear()
        SessionState._clear(base)

    @rx.event
    async def require_user(self):
        """On load of a protected page: show the user, or send them to the login page."""
        try:
            identity, user = await in_session(auth.signed_in_user, self._cookie_token())
        except NotAuthenticated:
            self._clear()
            return rx.redirect(LOGIN_ROUTE)
        self._user_id = identity.user_id
        self._session_id = identity.session_id
        self._show_me(users.Me.of(user))
        self.signed_in = True
        return None

    @rx.event
    async def redirect_if_signed_in(self):
        """On load of the login and register pages: a signed-in user goes home."""
        try:
            await in_session(auth.authenticate, self._cookie_token())
        except NotAuthenticated:
            self._clear()
            return None
        return rx.redirect(HOME_ROUTE)

    @rx.event
    async def log_out(self):
        """Revoke this session on the server, clear the cookie, go to the login page."""
        try:
            identity = await in_session(auth.authenticate, self._cookie_token())
            await in_session(auth.logout, identity)
        except NotAuthenticated:
            pass
        await self._empty_tab()
        return rx.call_script(logout_script())
