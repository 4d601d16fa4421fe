"""Presence: who has a connected tab right now, and when they were last seen.

Reflex 0.10 offers no hook when a websocket closes, so each worker runs this small watcher:
every few seconds it asks the installed tab driver (Reflex's own token manager: memory, or
Redis with several workers) which registered tabs are still connected, and tells friends when
someone comes or goes. It reads no database table on its tick; it writes ``last_seen_at``
only when someone leaves.
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

TICK_SECONDS = 3.0


def _touch_last_seen(user_id: int) -> None:
    with session_scope() as db:
        users.touch_last_seen(db, user_id=user_id)


async def watch() -> None:
    """Lifespan task: notice users whose last tab went away, or who came online."""
    online: set[int] = set()
    while True:
        try:
            tabs = {uid: await push.connected_tabs(uid) for uid in await get_registry().users()}
            now_online = {uid for uid, count in tabs.items() if count}
            metrics.CONNECTED_TABS.set(sum(tabs.values()))
            metrics.ONLINE_USERS.set(len(now_online))
            for user_id in online - now_online:
                await asyncio.to_thread(_touch_last_seen, user_id)
                outbox.publish(PresenceChanged(user_id))
            for user_id in now_online - online:
                outbox.publish(PresenceChanged(user_id))
            online = now_online
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - presence must never take the worker down
            log.exception("presence tick failed")
        await asyncio.sleep(TICK_SECONDS)
