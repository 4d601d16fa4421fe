"""Presence: who has a connected tab right now, and when they were last seen.

Coming online is announced by the tab's own load (``SidebarState.load``). Going offline is
announced when a websocket closes: Reflex 0.10 has no hook for that, so the app wraps its
event namespace's ``on_disconnect`` (``iris_reflex.py``) and calls ``tab_closed``, which
looks only at that user's other tabs. Nothing runs per connected tab while nobody comes or
goes. A sweep catches what no disconnect reports: a worker killed with its tabs, whose
disconnects nobody saw (run every ``SWEEP_SECONDS``, and at once when a worker is known dead:
``live.workers``).
"""

from __future__ import annotations

import asyncio
import logging

from iris_reflex import metrics
from iris_reflex.db import session_scope
from iris_reflex.live import outbox, push
from iris_reflex.live.events import PresenceChanged
from iris_reflex.live.registry import get_registry
from iris_reflex.services import users

log = logging.getLogger("iris.presence")

SWEEP_SECONDS = 30.0

# Tabs whose websocket is connected to this worker (token -> user), and the users this
# worker has announced as online.
_here: dict[str, int] = {}
_online: set[int] = set()


def _touch_last_seen(user_id: int) -> None:
    with session_scope() as db:
        users.touch_last_seen(db, user_id=user_id)


def tab_opened(user_id: int, token: str) -> None:
    """A tab of ``user_id`` loaded on this worker (its load announces the user online)."""
    _here[token] = user_id
    _online.add(user_id)
    metrics.CONNECTED_TABS.set(len(_here))
    metrics.ONLINE_USERS.set(len(_online))


async def tab_closed(token: str) -> None:
    """A websocket of this worker closed: if it was its user's last connected tab, the user
    is offline now (last seen, and friends are told)."""
    user_id = _here.pop(token, None)
    metrics.CONNECTED_TABS.set(len(_here))
    if user_id is None or await push.is_online(user_id, ignoring=token):
        return
    await _went_offline(user_id)


async def _went_offline(user_id: int) -> None:
    _online.discard(user_id)
    metrics.ONLINE_USERS.set(len(_online))
    await asyncio.to_thread(_touch_last_seen, user_id)
    outbox.publish(PresenceChanged(user_id))


async def sweep() -> None:
    """Everyone registered (by any worker) whose tabs are all gone without a close being
    reported (a worker killed with them) is offline: friends are told once, and the dead
    tabs leave the registry (a tab that comes back registers again when it loads)."""
    registry = get_registry()
    for user_id in await registry.users() | _online:
        if await push.is_online(user_id):
            continue
        for token in await registry.tokens(user_id):
            await registry.remove(user_id, token)
            _here.pop(token, None)
        await _went_offline(user_id)
    metrics.CONNECTED_TABS.set(len(_here))


async def watch() -> None:
    """Lifespan task: the slow sweep."""
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        try:
            await sweep()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - presence must never take the worker down
            log.exception("presence sweep failed")
