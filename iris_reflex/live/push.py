"""Pushing a change into every open tab of a user.

A push carries a kind of change: each tab re-reads what it may show through the services, as
its own user, so expiry, deletion and blocks are applied per viewer and nothing is ever sent
that a read would not return. The one exception is the hot path, a new message: the fan-out
reads it once per user through the same rule and hands that view to the user's tabs.

This module knows users and tokens, not Reflex states: the app installs a ``TabDriver``
(``state.tabs``) that opens a tab's state, checks that it is still signed in as the same
user with a live session, and applies the change. A tab whose driver says it no longer
belongs to the user leaves the registry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from iris_reflex import metrics
from iris_reflex.live.events import Change, TabChange
from iris_reflex.live.registry import RedisRegistry, get_registry
from iris_reflex.live.relay import get_relay

log = logging.getLogger("iris.live")


class TabDriver(Protocol):
    """How the live layer reaches one open tab (installed by the app)."""

    async def is_connected(self, token: str) -> bool:
        """Whether the tab's websocket is connected to any worker now."""
        ...

    async def apply(self, token: str, user_id: int, change: Change) -> bool:
        """Apply ``change``; False when the tab is no longer ``user_id``'s live session."""
        ...

    async def sign_out(self, token: str, user_id: int) -> bool:
        """Empty the tab and send it to the login page if its session has ended."""
        ...

    def worker_id(self) -> str | None:
        """This worker's name among several (None with one worker)."""
        ...

    def is_local(self, token: str) -> bool:
        """Whether the tab's websocket is connected to this worker."""
        ...

    async def owner(self, token: str) -> str | None:
        """The worker whose socket the tab is connected to; None when it is not connected."""
        ...

    def flush(self, token: str) -> None:
        """Have the tab's stored copy (several workers) catch up with what it shows now."""
        ...

    async def forget_worker(self, worker_id: str) -> int:
        """Drop the records of tabs connected to a dead worker; returns how many."""
        ...

    async def release_locks_of(self, worker_id: str) -> int:
        """Release the tab locks a dead worker held; returns how many."""
        ...


_driver: TabDriver | None = None


def install(driver: TabDriver | None) -> None:
    """Set (or remove) the driver pushes go through."""
    global _driver
    _driver = driver


# A tab whose socket is gone still has its state (in memory, or in Redis with several
# workers) until Reflex expires it. A change that makes it re-read is still applied there,
# so a message that expired or was deleted leaves that copy too; a change that would add
# content to it (a new message, typing) is not.
_REREAD_OFFLINE = frozenset({TabChange.CONVERSATIONS, TabChange.FRIENDS})
# Changes that can take something off a tab (expired, deleted, blocked): its stored copy is
# written at once, not when the worker's hold on the tab ends (``ReflexTabs.flush``).
_REMOVES = frozenset({TabChange.CONVERSATIONS, TabChange.FRIENDS, TabChange.RESYNC})


async def _relayed(owner: str, user_id: int, token: str, change: Change) -> bool:
    """Hand ``change`` to ``owner``, the worker holding the tab's socket (``live.relay``);
    False when there is no relay or nobody there heard it."""
    relay = get_relay()
    if relay is None:
        return False
    try:
        sent = await relay.send(owner, user_id, token, change)
    except Exception:  # noqa: BLE001 - Redis failing: apply it here, the slow way
        log.warning("could not relay a change to worker %s…", owner[:8], exc_info=True)
        return False
    if sent:
        metrics.by_kind(metrics.RELAYED, change.kind.value).inc()
    return sent


async def _push_one(
    driver: TabDriver, user_id: int, token: str, change: Change, *, relay: bool = True
) -> None:
    if not driver.is_local(token):
        owner = await driver.owner(token)
        if owner is None:
            if change.kind in _REREAD_OFFLINE:
                await driver.apply(token, user_id, change)
                driver.flush(token)
            await get_registry().remove(user_id, token)
            return
        if relay and await _relayed(owner, user_id, token, change):
            return
    if not await driver.apply(token, user_id, change):
        await get_registry().remove(user_id, token)
        return
    if change.kind in _REMOVES:
        driver.flush(token)
    metrics.by_kind(metrics.PUSHES, change.kind.value).inc()


def store_tab_soon(token: str) -> None:
    """Have the tab's stored copy (several workers) written once its current event ends:
    what the tab looks at changed (a conversation opened or closed), and a tab that has to
    reconnect to another worker must come back to it."""
    driver = _driver
    if driver is not None:
        driver.flush(token)


async def apply_relayed(user_id: int, token: str, change: Change) -> None:
    """Apply a change another worker relayed for a tab connected here (if the tab has moved
    on meanwhile, it is applied through Redis, never relayed again)."""
    driver = _driver
    if driver is None:
        return
    try:
        await _push_one(driver, user_id, token, change, relay=False)
    except Exception as exc:  # noqa: BLE001 - one broken tab must not stop the others
        log.warning("relayed push to tab %s… of user %s failed: %r", token[:8], user_id, exc)


async def tabs_of(user_id: int, *, skip_token: str | None = None) -> list[str]:
    """The user's registered tabs but ``skip_token`` (what a push would reach)."""
    if _driver is None:
        return []
    return [t for t in await get_registry().tokens(user_id) if t != skip_token]


async def register_tab(user_id: int, token: str) -> None:
    """The tab is ``user_id``'s from now on, connected to this worker: pushes reach it."""
    await get_registry().add(user_id, token, worker_id())


async def hand_over(
    changes: Sequence[tuple[int, Change]], *, skip_token: str | None = None
) -> list[list[str]]:
    """Each user's tabs (but ``skip_token``) that are still to be reached from here, for
    ``changes`` (one per user, in order). With several workers the tabs registered on another
    worker are handed their change in the same Redis call that looks them up
    (``relay.Relay.send_to_users``): what is returned is the tabs registered here or on no
    worker, and those whose worker nobody heard (it died, or renamed itself at start-up),
    which ``_push_one`` then reaches as any other."""
    if _driver is None:
        return [[] for _ in changes]
    registry, relay, here = get_registry(), get_relay(), worker_id()
    if relay is None or here is None or not isinstance(registry, RedisRegistry):
        looked_up = await registry.tokens_of([user_id for user_id, _ in changes])
        return [[t for t in tokens if t != skip_token] for tokens in looked_up]
    results = await relay.send_to_users(
        [registry.key(user_id) for user_id, _ in changes], changes, here=here, skip_token=skip_token
    )
    for (_, change), (relayed, _) in zip(changes, results, strict=True):
        if relayed:
            metrics.by_kind(metrics.RELAYED, change.kind.value).inc(relayed)
    return [left for _, left in results]


async def push_to_tabs(user_id: int, tokens: list[str], change: Change) -> int:
    """Apply ``change`` to these tabs of the user (from ``tabs_of``); returns tabs reached.
    One tab failing never stops the others."""
    driver = _driver
    if driver is None or not tokens:
        return 0
    if len(tokens) == 1:  # the usual case: one tab, no task to create and gather
        try:
            await _push_one(driver, user_id, tokens[0], change)
        except Exception as exc:  # noqa: BLE001 - as below: logged, the action stands
            log.warning("push to tab %s… of user %s failed: %r", tokens[0][:8], user_id, exc)
            return 0
        return 1
    results = await asyncio.gather(
        *(_push_one(driver, user_id, token, change) for token in tokens), return_exceptions=True
    )
    for token, result in zip(tokens, results, strict=True):
        if isinstance(result, BaseException):
            log.warning("push to tab %s… of user %s failed: %r", token[:8], user_id, result)
    return sum(1 for r in results if not isinstance(r, BaseException))


# Changes that only make a tab re-read (or turn ticks): while one is being applied to a
# user's tabs, more of the same kind fold into a single follow-up, so a burst of events costs
# each tab two re-reads, not one per event, and a backlog cannot build up behind a slow tab.
_MERGEABLE = frozenset(
    {TabChange.CONVERSATIONS, TabChange.FRIENDS, TabChange.PRESENCE, TabChange.RECEIPTS}
)
_following: dict[tuple[int, str | None, TabChange], Change | None] = {}


def _merged(queued: Change | None, change: Change) -> Change:
    if queued is None:
        return change
    ids = tuple(sorted({*queued.message_ids, *change.message_ids}))
    return Change(change.kind, message_ids=ids)


async def push_to_user(
    user_id: int,
    change: Change,
    *,
    skip_token: str | None = None,
    tokens: Sequence[str] | None = None,
) -> int:
    """Apply ``change`` to each of the user's open tabs but ``skip_token``; returns tabs
    reached (0 when it was folded into a push already under way, which then runs it).
    ``tokens``: the user's tabs, already looked up after the change (``hand_over``);
    a follow-up round looks them up again."""
    looked_up = None if tokens is None else [t for t in tokens if t != skip_token]
    if change.kind not in _MERGEABLE:
        if looked_up is None:
            looked_up = await tabs_of(user_id, skip_token=skip_token)
        return await push_to_tabs(user_id, looked_up, change)
    key = (user_id, skip_token, change.kind)
    if key in _following:
        _following[key] = _merged(_following[key], change)
        metrics.by_kind(metrics.MERGED_CHANGES, change.kind.value).inc()
        return 0
    _following[key] = None
    reached = 0
    next_change: Change | None = change
    try:
        while next_change is not None:
            if looked_up is None:
                looked_up = await tabs_of(user_id, skip_token=skip_token)
            reached += await push_to_tabs(user_id, looked_up, next_change)
            looked_up = None
            next_change, _following[key] = _following[key], None
    finally:
        del _following[key]
    return reached


async def is_online(user_id: int, *, ignoring: str | None = None) -> bool:
    """Whether the user has at least one connected tab (but ``ignoring``, one closing)."""
    driver = _driver
    if driver is None:
        return False
    for token in await get_registry().tokens(user_id):
        if token != ignoring and await driver.is_connected(token):
            return True
    return False


async def sign_out_ended_sessions(user_id: int, *, skip_token: str | None = None) -> int:
    """Every registered tab of ``user_id`` whose session has ended (password change, sign
    out everywhere, account deletion) is emptied, connected or not, and a connected one is
    sent to the login page at once; returns how many were connected. ``skip_token`` (the
    asking tab) is left alone."""
    driver = _driver
    if driver is None:
        return 0
    sent = 0
    for token in await get_registry().tokens(user_id):
        if token == skip_token:
            continue
        try:
            # A tab without a socket is emptied too: its state outlives the socket.
            connected = await driver.is_connected(token)
            if await driver.sign_out(token, user_id):
                await get_registry().remove(user_id, token)
                sent += connected
            elif not connected:
                await get_registry().remove(user_id, token)
        except Exception:  # noqa: BLE001 - one broken tab must not stop the others
            log.warning("could not sign out tab %s… of user %s", token[:8], user_id)
    return sent


def worker_id() -> str | None:
    """This worker's name among several, as the installed driver knows it."""
    driver = _driver
    return driver.worker_id() if driver is not None else None


# Tabs re-read at once by ``resync_local_tabs``. Each re-read runs several statements on
# the database threads (asyncio's default executor: a first-come queue for 6 threads on 2
# cores); with 1,000 tabs, each survivor of a killed worker queued 500 re-reads' statements
# ahead of every live message's for seconds (``bench.load_tabs --kill-after``).
RESYNC_AT_ONCE = 4


async def resync_local_tabs() -> int:
    """Re-read everything each tab connected to this worker shows (after another worker
    died, pushes it owed may never have been sent), ``RESYNC_AT_ONCE`` at a time; returns
    tabs reached."""
    driver = _driver
    if driver is None:
        return 0
    registry = get_registry()
    users = list(await registry.users())
    jobs = [
        (user_id, token)
        for user_id, tokens in zip(users, await registry.tokens_of(users), strict=True)
        for token in tokens
        if driver.is_local(token)
    ]
    change = Change(TabChange.RESYNC)
    gate = asyncio.Semaphore(RESYNC_AT_ONCE)

    async def resync(user_id: int, token: str) -> None:
        async with gate:
            await _push_one(driver, user_id, token, change)

    results = await asyncio.gather(
        *(resync(user_id, token) for user_id, token in jobs), return_exceptions=True
    )
    for (user_id, token), result in zip(jobs, results, strict=True):
        if isinstance(result, BaseException):
            log.warning("resync of tab %s… of user %s failed: %r", token[:8], user_id, result)
    return sum(1 for r in results if not isinstance(r, BaseException))


async def forget_worker(dead_worker_id: str) -> int:
    """Drop a dead worker's socket records, so its tabs no longer count as connected."""
    driver = _driver
    return await driver.forget_worker(dead_worker_id) if driver is not None else 0


async def release_locks_of(dead_worker_id: str) -> int:
    """Free the tabs a dead worker held, so they need not wait out its locks' expiry."""
    driver = _driver
    return await driver.release_locks_of(dead_worker_id) if driver is not None else 0


async def receive_relayed() -> None:
    """Lifespan task (several workers): apply the changes other workers relay for the tabs
    connected here; after a break in the subscription, re-read those tabs."""
    relay = get_relay()
    if relay is None:
        return
    try:
        await relay.listen(worker_id, apply_relayed, resync_local_tabs)
    finally:
        await relay.close()
