"""Publishing events after commit, from any thread, to be fanned out on the app's loop.

Why it is built this way:
- Actions run wherever their caller runs: a Reflex event handler on the event loop, or a
  JSON API route in a worker thread. ``publish`` works from both: it hands the event to the
  loop the app bound at start-up, and the fan-out runs there as its own task, never inside
  the caller's transaction or its tab's state lock.
- Nothing is pushed before the caller's commit: services commit before they return, and
  actions publish only after the service returned.
- Without a running app (a unit test of a service or a state) there is nobody to tell, so
  an event is dropped; tests that want to see events ``record`` them instead.
- A failing fan-out is logged, never raised: the action it announces is already stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator

from iris_reflex import metrics
from iris_reflex.live.events import Event

log = logging.getLogger("iris.live")

Deliver = Callable[[Event, str | None], Awaitable[None]]

_loop: asyncio.AbstractEventLoop | None = None
_deliver: Deliver | None = None
_pending: set[asyncio.Task[None]] = set()
_recording: list[tuple[Event, str | None]] | None = None


def bind(deliver: Deliver, loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Fan events out with ``deliver`` on ``loop`` (the running loop by default)."""
    global _loop, _deliver
    _loop = loop or asyncio.get_running_loop()
    _deliver = deliver


def unbind() -> None:
    global _loop, _deliver
    _loop = None
    _deliver = None


async def _run(deliver: Deliver, event: Event, skip_token: str | None, published: float) -> None:
    kind = type(event).__name__
    try:
        await deliver(event, skip_token)
    except Exception:  # noqa: BLE001 - a lost push must not turn a done action into an error
        metrics.FANOUT_FAILURES.inc()
        log.exception("live fan-out of %s failed", kind)
    else:
        metrics.by_kind(metrics.DELIVERY, kind).observe(time.perf_counter() - published)


def _done(task: asyncio.Task[None]) -> None:
    _pending.discard(task)
    metrics.PENDING_FANOUTS.set(len(_pending))


def _start(deliver: Deliver, event: Event, skip_token: str | None, published: float) -> None:
    task = asyncio.get_running_loop().create_task(_run(deliver, event, skip_token, published))
    _pending.add(task)
    metrics.PENDING_FANOUTS.set(len(_pending))
    task.add_done_callback(_done)


def publish(event: Event, *, skip_token: str | None = None) -> None:
    """Announce ``event`` (already committed); ``skip_token`` is the tab that acted."""
    metrics.by_kind(metrics.EVENTS, type(event).__name__).inc()
    if _recording is not None:
        _recording.append((event, skip_token))
        return
    loop, deliver = _loop, _deliver
    if loop is None or deliver is None or loop.is_closed():
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    published = time.perf_counter()
    if running is loop:
        _start(deliver, event, skip_token, published)
    else:
        loop.call_soon_threadsafe(_start, deliver, event, skip_token, published)


async def settle() -> None:
    """Wait until every fan-out started so far has finished (tests, shutdown)."""
    while _pending:
        await asyncio.gather(*list(_pending), return_exceptions=True)


@contextlib.contextmanager
def record() -> Iterator[list[tuple[Event, str | None]]]:
    """Collect published events instead of delivering them (tests of who is told what)."""
    global _recording
    previous, _recording = _recording, []
    try:
        yield _recording
    finally:
        _recording = previous
