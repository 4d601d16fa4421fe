"""How a live change reaches one open tab's states: the ``TabDriver`` the app installs.

``live/`` knows users, tokens and kinds of change, not Reflex states; this module is the
bridge. ``apply_change`` says, per kind, which states of a tab re-read what (through the
services, as the tab's own user); ``ReflexTabs`` opens another tab's state with
``app.modify_state``, which sends that tab the delta (through Redis when it is connected to
another worker). Before touching a tab it checks that the tab is still signed in as the
same user with a session that has not been revoked: a tab that logged out and in as someone
else keeps its client token, and a session ended on another device must stop receiving.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import re
from collections.abc import Awaitable, Callable
from typing import Any

import reflex as rx
from reflex.istate.manager.redis import StateManagerRedis
from reflex.istate.manager.token import BaseStateToken
from reflex.state import BaseState, StateUpdate
from reflex.utils.token_manager import RedisTokenManager, TokenManager
from reflex_base.environment import oplock_hold_time
from reflex_base.event import Event
from reflex_base.utils.exceptions import LockExpiredError
from sqlmodel import Session

from iris_reflex.actions import messages as message_actions
from iris_reflex.db import in_one_statement, in_session
from iris_reflex.errors import DomainError
from iris_reflex.live.events import Change, TabChange
from iris_reflex.live.keepalive import HeldLocks, release_locks_of
from iris_reflex.live.registry import redis_result
from iris_reflex.paths import LOGIN_ROUTE
from iris_reflex.services import auth
from iris_reflex.services.auth import Identity
from iris_reflex.services.message_views import MessageView
from iris_reflex.state import connections
from iris_reflex.state.conversation import ConversationState, MessagesState
from iris_reflex.state.friends import FriendsState
from iris_reflex.state.session import SessionState
from iris_reflex.state.sidebar import SidebarState

log = logging.getLogger("iris.live")

# Reflex's refused write-back of a held tab: a LockExpiredError raised in its ``do_flush``,
# whose message names the tab (``Lock expired for token {token}_{state}``; a client token
# never holds ``_``).
_WRITE_BACK = "do_flush"
_REFUSED_TOKEN = re.compile(r"Lock expired for token ([^_\s]+)_")


def _refused_write_back(error: object) -> str | None:
    """The tab whose held states Reflex failed to write back, if ``error`` is that."""
    if not isinstance(error, LockExpiredError):
        return None
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_name != _WRITE_BACK:
        tb = tb.tb_next
    found = _REFUSED_TOKEN.match(str(error))
    return found.group(1) if tb is not None and found else None


# The state a change needs first; Reflex loads it (and its parents) for the push.
_ENTRY: dict[TabChange, type[rx.State]] = {
    TabChange.MESSAGE_ARRIVED: MessagesState,
    TabChange.CONVERSATIONS: MessagesState,
    TabChange.FRIENDS: FriendsState,
    TabChange.PRESENCE: ConversationState,
    TabChange.TYPING: ConversationState,
    TabChange.RECEIPTS: MessagesState,
    TabChange.RESYNC: MessagesState,
}


async def apply_change(state: rx.State, change: Change) -> None:
    """Apply ``change`` to the tab that ``state`` belongs to."""
    kind = change.kind
    if kind is TabChange.TYPING:
        conversation = await state.get_state(ConversationState)
        conversation._on_friend_typing(change.username)
        return
    if kind is TabChange.RECEIPTS:
        messages = await state.get_state(MessagesState)
        await messages._read_by_friend(change.message_ids)
        return
    if kind is TabChange.PRESENCE:
        conversation = await state.get_state(ConversationState)
        await conversation._refresh_presence()
        return
    sidebar = await state.get_state(SidebarState)
    if kind in (TabChange.FRIENDS, TabChange.RESYNC):
        friends = await state.get_state(FriendsState)
        await friends._refresh()
        await friends._refresh_me()
        await sidebar._refresh(with_friends=True)
        if kind is TabChange.FRIENDS:
            return
        conversation = await state.get_state(ConversationState)
        await conversation._refresh_presence()
        messages = await state.get_state(MessagesState)
        await messages._reload()
        return
    messages = await state.get_state(MessagesState)
    if kind is TabChange.MESSAGE_ARRIVED:
        # A friend's message: it is shown, and read at once if its conversation is open.
        messages.friend_typing = False
        await messages._reload()
        await messages._mark_read()
    else:
        await messages._reload()
    await sidebar._refresh()


async def _show_new_message(session: SessionState, identity: Identity, view: MessageView) -> bool:
    """The hot path: a new message handed over as this user sees it is appended and its
    sidebar row updated, without re-reading the page or the list. One statement
    (``message_actions.arrive_alone``, no transaction around it) checks the session and that
    the message is still there, and reads it if its conversation is open here. False when
    the session has ended."""
    messages = await session.get_state(MessagesState)
    read = messages._is_open_for(view) and view.sender_id != identity.user_id
    token = session._token()
    arrival = await in_one_statement(
        message_actions.arrive_alone, identity=identity, message=view, read=read, skip_token=token
    )
    if arrival is None:  # an after-read countdown to start, or nothing was read: find out
        arrival = await in_session(
            message_actions.arrive, identity=identity, message=view, read=read, skip_token=token
        )
    if not arrival.signed_in:
        return False
    if arrival.shown is None:
        return True  # deleted or expired meanwhile: that change re-reads the tab itself
    on_screen = messages._message_arrived(arrival.shown)
    sidebar = await session.get_state(SidebarState)
    if not sidebar._message_shown(arrival.shown, read=on_screen):
        await sidebar._refresh()
    return True


def _still_signed_in(db: Session, user_id: int, session_id: str | None) -> bool:
    """A tab whose session was revoked elsewhere (logout, password change) gets nothing."""
    if session_id is None:
        return False
    return auth.session_is_live(db, auth.Identity(user_id=user_id, session_id=session_id))


# Delete a socket record only if it still names the dead worker (a tab may have just linked
# it to a live one).
_DELETE_IF_SAME = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def _record_owner(raw: bytes | None) -> str | None:
    """The worker named by one of Reflex's socket records (Reflex pickles them itself)."""
    if not raw:
        return None
    record = pickle.loads(raw)  # noqa: S301 - Reflex's own record, in Reflex's own Redis
    owner = getattr(record, "instance_id", None)
    return owner if isinstance(owner, str) else None


def _lease_lock_id(lease: asyncio.Task[Any]) -> bytes:
    """The lock id a Reflex lease holds its tab's lock with, from the lease task's name
    (``reflex_lease_breaker|{token}|{lock id}``); empty if Reflex named it otherwise, and
    the lock is then renewed whoever holds it (as before lock ids were checked)."""
    _, _, lock_id = lease.get_name().rpartition("|")
    return lock_id.encode() if lease.get_name().startswith("reflex_lease_breaker|") else b""


def _state_classes() -> list[type[BaseState]]:
    """Every state class of the app (Reflex's own included): the tree under ``rx.State``,
    as Reflex has registered it (a walk of a few dozen classes)."""
    found: list[type[BaseState]] = []
    stack: list[type[BaseState]] = [rx.State]
    while stack:
        cls = stack.pop()
        found.append(cls)
        stack.extend(cls.get_substates())
    return found


class ReflexTabs:
    """The live layer's way into open tabs of this Reflex app."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._state_classes: list[type[BaseState]] = []

    def _redis_manager(self, *, holding: bool = False) -> StateManagerRedis | None:
        """Reflex's Redis state manager (several workers); with ``holding``, only when it
        holds tabs' states in memory (its opportunistic lock). None before it is set up."""
        try:
            manager = self._app.state_manager
        except ValueError:  # not set up yet
            return None
        if not isinstance(manager, StateManagerRedis):
            return None
        return manager if manager._oplock_enabled or not holding else None

    def _tokens(self) -> TokenManager | None:
        namespace = self._app.event_namespace
        return None if namespace is None else namespace._token_manager

    def stored_state(self) -> tuple[Any, int] | None:
        """Reflex's Redis client and the TTL it gives a tab's state keys; None when tab
        state is not in Redis, or the app has not set up its state manager yet."""
        manager = self._redis_manager()
        if manager is None:
            return None
        self._state_classes = _state_classes()  # once a round, for ``stored_keys``
        return manager.redis, manager.token_expiration

    def local_tokens(self) -> list[str]:
        """Tokens whose websocket is connected to this worker (Reflex also caches records
        of other workers' tabs here: those are theirs)."""
        manager = self._tokens()
        if manager is None:
            return []
        me = manager.instance_id
        return [
            t for t, record in list(manager.token_to_socket.items()) if record.instance_id == me
        ]

    def stored_keys(self, token: str) -> list[str]:
        """The keys Reflex keeps for ``token`` in Redis: one per state class of the app,
        named as the state manager names them (``{token}_{state full name}``), and the token
        manager's socket record (``token_manager_socket_record_{token}``)."""
        at = BaseStateToken(ident=token, cls=rx.State)
        keys = [at._state_key(cls) for cls in self._state_classes or _state_classes()]
        manager = self._tokens()
        if isinstance(manager, RedisTokenManager):
            keys.append(manager._get_redis_key(token))
        return keys

    def worker_id(self) -> str | None:
        manager = self._tokens()
        return manager.instance_id if isinstance(manager, RedisTokenManager) else None

    def is_local(self, token: str) -> bool:
        manager = self._tokens()
        if manager is None:
            return False
        record = manager.token_to_socket.get(token)
        return record is not None and record.instance_id == manager.instance_id

    async def owner(self, token: str) -> str | None:
        manager = self._tokens()
        if manager is None:
            return None
        if self.is_local(token):
            return manager.instance_id
        if isinstance(manager, RedisTokenManager):
            # Reflex's copy of the tab's socket record, which it keeps current from Redis's
            # notifications (a record it does not hold yet is read). A stale one costs only
            # time: the worker it names applies the change through Redis, and one that has
            # died hears nothing, so the change is applied here.
            return await manager._get_token_owner(token)
        return None  # one worker: a tab not connected here is not connected

    def flush(self, token: str) -> None:
        """End this worker's hold on the tab's states, so its stored copy is written now.

        With several workers Reflex's opportunistic lock (``rxconfig.py``) keeps a tab's
        states in the memory of the worker using them and writes them to Redis when its hold
        ends (``IRIS_TAB_HOLD_SECONDS``, 60 s) or another worker asks for the tab. Until then the
        stored copy still holds what a change just took away (a message that expired or was
        deleted). Ending the hold early writes the copy as soon as the state is free (at
        once when it is). Nothing to do without a hold (one worker, or no lease here)."""
        manager = self._redis_manager(holding=True)
        lease = None if manager is None else manager._local_leases.get(token)
        if lease is not None and not lease.done():
            lease.cancel()

    def hold_states(self, seconds: float) -> bool:
        """Keep a tab's states in this worker's memory for ``seconds`` between write-backs to
        Redis (several workers, Reflex's opportunistic lock); False when nothing is held here
        or Reflex's own ``REFLEX_OPLOCK_HOLD_TIME`` says how long.

        Why a setting: each hold that ends costs a write-back of every state of the tab
        and, at its next event, a new lock, a read of them all and a new lease. With 1,000
        tabs on two backends most events found their 5 s hold over, and a message cost
        11.8 ms of the backends' CPU against 8.3 with 100 tabs. Reflex keeps a hold below
        the lock's expiry (10 s) because nothing renews the lock meanwhile; here
        ``keepalive.watch_held_locks`` renews the lock of every held tab once it is due, so
        the lock outlives any hold while the worker lives; a dead worker's locks are released
        by the survivors (``live.workers``), or else expire 10 s after its last renewal. Call
        it only where those renewals run."""
        manager = self._redis_manager(holding=True)
        if manager is None or oplock_hold_time():
            return False
        manager.oplock_hold_time_ms = max(1, round(seconds * 1000))
        return True

    def held_locks(self) -> HeldLocks | None:
        """The locks of the tabs whose states this worker holds in memory now (its
        opportunistic leases), each with the lock id it took it with; None when no state is
        held (one worker, or the lock is not opportunistic)."""
        manager = self._redis_manager(holding=True)
        if manager is None:
            return None
        locks = [
            (manager._lock_key(BaseStateToken(ident=token, cls=rx.State)), _lease_lock_id(lease))
            for token, lease in list(manager._local_leases.items())
            if not lease.done()
        ]
        return HeldLocks(manager.redis, locks, manager.lock_expiration, self.worker_id())

    async def release_locks_of(self, worker_id: str) -> int:
        """Release the tab locks a dead worker held (``keepalive.release_locks_of``)."""
        manager = self._redis_manager(holding=True)
        return 0 if manager is None else await release_locks_of(manager.redis, worker_id)

    def on_refused_write_back(self, refused: Callable[[str], object]) -> None:
        """Call ``refused(token)`` when the write-back of a tab's held states is refused.

        Reflex then drops what the tab's states gained while held, and the tab's next event
        starts from the older stored copy: its page would lack messages its screen already
        shows. The worker keeps the locks it holds alive (``keepalive.watch_held_locks``),
        yet on a worker overloaded far past its capacity a few writes were still refused
        (4 per backend in a 20 s run at 200 messages/s offered to two backends that deliver
        about 105), so the app re-reads such a tab (``reread``) and it shows every message
        again. Installed as the running loop's exception handler, around the one already
        there: Reflex reports the failure only there."""
        loop = asyncio.get_running_loop()
        previous = loop.get_exception_handler()

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            # Reported once by the lease's own task and, when that task was cancelled
            # meanwhile, only as a write-back task's exception nobody retrieved: the same
            # exception may come twice, so it is marked once seen.
            error = context.get("exception")
            token = _refused_write_back(error)
            if token is not None and not getattr(error, "_iris_reread", False):
                error._iris_reread = True  # type: ignore[union-attr]
                refused(token)
            if previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        loop.set_exception_handler(handler)

    async def reread(self, token: str) -> bool:
        """Re-read everything the tab shows, as its own signed-in user (a tab whose held
        states were lost); False when it is not signed in with a live session.

        The stored copy the tab falls back to may be older than its sign-in: while 1,000 tabs
        connected, two tabs lost the write-back of their first hold (``hydrate_and_load``),
        their copy knew no user, and the re-read did nothing; their sends then failed
        ("Open a conversation first") until a reload. Such a tab is identified the way its
        own events are, by its websocket's session cookie (``state.connections``), when that
        socket is connected to this worker; the conversation its screen still shows is
        closed there, since the copy does not know which one it was."""
        return await self._apply(
            token, Change(TabChange.RESYNC), expected_user_id=None, by_socket_cookie=True
        )

    def _socket_session_token(self, token: str) -> str | None:
        """The session cookie of the tab's websocket, if it is connected to this worker."""
        manager = self._tokens()
        record = None if manager is None else manager.token_to_socket.get(token)
        if manager is None or record is None or record.instance_id != manager.instance_id:
            return None
        return connections.session_token(record.sid)

    async def forget_worker(self, worker_id: str) -> int:
        manager = self._tokens()
        if not isinstance(manager, RedisTokenManager):
            return 0
        dropped = 0
        async for token in manager.enumerate_tokens():
            key = manager._get_redis_key(token)
            raw = await manager.redis.get(key)
            if _record_owner(raw) == worker_id:
                dropped += int(await redis_result(manager.redis.eval(_DELETE_IF_SAME, 1, key, raw)))
        return dropped

    def keep_tokens_of_dead_workers(self, is_dead: Callable[[str], Awaitable[bool]]) -> None:
        """A tab reconnecting after its worker died keeps its token, and so its state.

        Reflex takes a token whose socket record exists for a duplicate tab and hands the
        connection a new token with an empty state. After ``kill -9`` the dead worker's
        records stay until the tab-state TTL passes, so every one of its tabs would come
        back empty (its open conversation closed). Before Reflex looks, a record naming a
        worker that ``is_dead`` is deleted (only if it still names that worker), and the tab
        links as itself.
        """
        manager = self._tokens()
        if not isinstance(manager, RedisTokenManager):
            return
        link = manager.link_token_to_sid

        async def link_token_to_sid(token: str, sid: str) -> str | None:
            key = manager._get_redis_key(token)
            try:
                raw = await manager.redis.get(key)
                owner = _record_owner(raw)
                if owner is not None and owner != manager.instance_id and await is_dead(owner):
                    await redis_result(manager.redis.eval(_DELETE_IF_SAME, 1, key, raw))
            except Exception:  # noqa: BLE001 - at worst Reflex hands out a new token
                log.warning("could not check the worker of tab %s…", token[:8], exc_info=True)
            return await link(token, sid)

        manager.link_token_to_sid = link_token_to_sid  # type: ignore[method-assign]

    async def is_connected(self, token: str) -> bool:
        namespace = self._app.event_namespace
        if namespace is None:
            return False
        return bool(await namespace._token_manager.is_token_connected(token))

    async def apply(self, token: str, user_id: int, change: Change) -> bool:
        return await self._apply(token, change, expected_user_id=user_id)

    async def _apply(
        self,
        token: str,
        change: Change,
        *,
        expected_user_id: int | None,
        by_socket_cookie: bool = False,
    ) -> bool:
        """Apply ``change`` as the tab's signed-in user, if its session is live (and that
        user is ``expected_user_id``, when one is expected). ``by_socket_cookie``: a tab
        whose state knows no user is identified by its socket's session cookie."""
        entry = _ENTRY[change.kind]
        async with self._app.modify_state(rx.BaseStateToken(ident=token, cls=entry)) as root:
            session = await root.get_state(SessionState)
            user_id, session_id = session._user_id, session._session_id
            unknown = user_id is None or session_id is None
            cookie = self._socket_session_token(token) if unknown and by_socket_cookie else None
            if cookie is not None:
                try:
                    proven = await in_session(auth.authenticate, cookie)
                except DomainError:
                    return False
                session._user_id = user_id = proven.user_id
                session._session_id = session_id = proven.session_id
                # The conversation the screen shows is not in this copy: the delta closes it
                # (the page and the state agree again; the user opens it anew).
                conversation = await session.get_state(ConversationState)
                await conversation._close()
            if user_id is None or session_id is None:
                return False
            if expected_user_id is not None and user_id != expected_user_id:
                return False
            identity = auth.Identity(user_id=user_id, session_id=session_id)
            if change.kind is TabChange.MESSAGE_ARRIVED and change.message is not None:
                return await _show_new_message(session, identity, change.message)
            if not await in_one_statement(auth.session_is_live, identity):
                return False
            await apply_change(session, change)
        return True

    async def sign_out(self, token: str, user_id: int) -> bool:
        async with self._app.modify_state(rx.BaseStateToken(ident=token, cls=SessionState)) as root:
            session = await root.get_state(SessionState)
            if session._user_id != user_id:
                return False  # someone else's now (the next push drops it from the registry)
            if await in_one_statement(_still_signed_in, user_id, session._session_id):
                return False  # the same session as the asking tab (another tab of this browser)
            await session._empty_tab()
        self.flush(token)
        if await self.is_connected(token):  # a tab without a socket is only emptied
            redirect = Event.from_event_type([rx.redirect(LOGIN_ROUTE)])
            await self._app.event_namespace.emit_update(StateUpdate(events=redirect), token)
        return True
