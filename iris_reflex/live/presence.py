"""Presence: who has a connected tab right now, and when they were last seen.

Reflex 0.10 offers no hook when a websocket closes, so each worker runs this small watcher:
every few seconds it asks Reflex's own token manager (memory, or Redis with several workers)
which registered tabs are still connected, and tells friends when someone comes or goes.
It reads no database table on its tick; it writes ``last_seen_at`` only when someone leaves.
"""

from __future__ import annotations

import asyncio
import logging

from iris_reflex.db import session_scope
from iris_reflex.live import push
from iris_reflex.live.registry import get_registry
from iris_reflex.services import friends, users

log = logging.getLogger("iris.presence")

TICK_SECONDS = 3.0


async def announce(user_id: int) -> None:
    """Tell the user's friends' tabs to re-read this user's presence."""
    from iris_reflex.state.chat import ChatState

    with session_scope() as db:
        friend_ids = [f.id for f in friends.list_friends(db, actor_id=user_id)]
    for friend_id in friend_ids:
        await push.push_to_user(friend_id, ChatState._on_presence_changed)


async def watch() -> None:
    """Lifespan task: notice users whose last tab went away."""
    online: set[int] = set()
    while True:
        try:
            now_online = {uid for uid in await get_registry().users() if await push.is_online(uid)}
            for user_id in online - now_online:
                with session_scope() as db:
                    users.touch_last_seen(db, user_id=user_id)
                await announce(user_id)
            for user_id in now_online - online:
                await announce(user_id)
            online = now_online
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - presence must never take the worker down
            log.exception("presence tick failed")
        await asyncio.sleep(TICK_SECONDS)
